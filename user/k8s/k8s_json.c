#include "k8s_json.h"

#include <string.h>

json_object *k8s_json_member(json_object *obj, const char *key, enum json_type type)
{
	json_object *v;

	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

const char *k8s_json_string(json_object *obj, const char *key, size_t *len)
{
	json_object *v = k8s_json_member(obj, key, json_type_string);
	const char *s;
	int n;

	if (!v)
		return NULL;
	s = json_object_get_string(v);
	n = json_object_get_string_len(v);
	if (!s || n < 0 || memchr(s, '\0', (size_t)n))
		return NULL;
	*len = (size_t)n;
	return s;
}

const char *k8s_json_resource_version(json_object *obj, size_t *len)
{
	return k8s_json_string(k8s_json_member(obj, "metadata", json_type_object), "resourceVersion", len);
}
