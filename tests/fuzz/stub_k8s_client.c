/*
 * The k8s_client.h functions that user/k8s/k8s_watch.c (the list+watch thread) and
 * user/k8s/event_recorder.c (the recorder thread) reference. The harnesses drive
 * only the pure parts and never start those threads, so these never run:
 * they exist so the harnesses link without user/k8s/k8s_client.c and libcurl,
 * as tests/unit/test_k8s_pods.c does with its own doubles.
 */
#include <errno.h>
#include <stdlib.h>

#include "k8s_client.h"

struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent)
{
	(void)cfg;
	(void)user_agent;
	abort();
}

void k8s_client_free(struct k8s_client *c)
{
	(void)c;
	abort();
}

void k8s_response_free(struct k8s_response *resp)
{
	strbuf_free(&resp->body);
}

int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, size_t max_body, long timeout_ms, struct k8s_response *resp)
{
	(void)c, (void)method, (void)path, (void)content_type, (void)body, (void)max_body;
	(void)timeout_ms, (void)resp;
	abort();
}

int k8s_stream(struct k8s_client *c, const char *path, k8s_stream_fn on_data, void *ctx,
	       long idle_timeout_s, volatile int *stop, struct k8s_response *resp)
{
	(void)c, (void)path, (void)on_data, (void)ctx, (void)idle_timeout_s, (void)stop, (void)resp;
	abort();
}
