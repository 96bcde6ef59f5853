/*
 * Pod names for this node, from the Kubernetes API: the pod cache
 * (pod_cache.h), the stream decoders (watch_decoder.h) and the watcher that
 * feeds the cache (pod_watcher.h), for the callers that want all three.
 */
#ifndef KSIGHT_K8S_PODS_H
#define KSIGHT_K8S_PODS_H

#include "pod_cache.h"
#include "pod_watcher.h"
#include "watch_decoder.h"

#endif
