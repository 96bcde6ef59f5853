/*
 * Reading API objects with json-c: accessors that tolerate NULL and wrong
 * types, so a decoder reads a field in one line and checks once.
 */
#ifndef KSIGHT_K8S_JSON_H
#define KSIGHT_K8S_JSON_H

#include <stddef.h>

#include <json-c/json.h>

/* Pod JSON nests about 13 deep (managedFields); json-c's default 32 is close enough to worry. */
#define K8S_JSON_DEPTH	64

/* obj[key] when obj is an object and the member has `type`, else NULL. */
json_object *k8s_json_member(json_object *obj, const char *key, enum json_type type);

/*
 * obj[key] as a string without NUL bytes (which C strings would silently
 * cut), its length in *len; NULL when absent, not a string or holding a NUL.
 */
const char *k8s_json_string(json_object *obj, const char *key, size_t *len);

/* obj.metadata.resourceVersion, or NULL. */
const char *k8s_json_resource_version(json_object *obj, size_t *len);

#endif
