/* --events-log: Events as JSON lines (see event_log.h). */
#include "event_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

struct event_log {
	int fd;
	bool is_stdout;
	pthread_mutex_t lock;  /* the buffer, and one line at a time */
	struct strbuf line;
	bool error_logged;
	char path[256];
};

/* A JSON string: quotes, backslashes and control bytes escaped, invalid UTF-8 as U+FFFD. */
static void put_string(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), i = 0, run;

	strbuf_putc(sb, '"');
	while (i < n) {
		unsigned char c = p[i];

		if (c >= 0x80) {
			run = utf8_valid_len(p + i, n - i);
			if (run) {
				strbuf_append(sb, (const char *)p + i, run);
				i += run;
			} else {
				strbuf_puts(sb, "\\ufffd");
				i++;
			}
			continue;
		}
		switch (c) {
		case '"': strbuf_puts(sb, "\\\""); break;
		case '\\': strbuf_puts(sb, "\\\\"); break;
		case '\n': strbuf_puts(sb, "\\n"); break;
		case '\r': strbuf_puts(sb, "\\r"); break;
		case '\t': strbuf_puts(sb, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				strbuf_printf(sb, "\\u%04x", c);
			else
				strbuf_putc(sb, (char)c);
		}
		i++;
	}
	strbuf_putc(sb, '"');
}

/* ,"key":"value" (the first key without the comma) */
static void put_field(struct strbuf *sb, const char *key, const char *value, bool first)
{
	if (!first)
		strbuf_putc(sb, ',');
	put_string(sb, key);
	strbuf_putc(sb, ':');
	put_string(sb, value);
}

/* RFC 3339, UTC, milliseconds: "2026-09-30T10:15:02.345Z" */
static int put_time(struct strbuf *sb, int64_t ns)
{
	time_t sec;
	struct tm tm;
	char buf[40];

	if (ns < 0)
		return -EINVAL;
	sec = (time_t)(ns / 1000000000LL);
	if (!gmtime_r(&sec, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm))
		return -EINVAL;
	strbuf_printf(sb, "\"%s.%03dZ\"", buf, (int)(ns % 1000000000LL / 1000000LL));
	return 0;
}

int event_log_line(const struct event_log_entry *e, struct strbuf *out)
{
	const struct k8s_event *ev = e ? e->ev : NULL;
	size_t start = out->len;
	int err;

	if (!ev || !e->outcome)
		return -EINVAL;
	strbuf_puts(out, "{\"timestamp\":");
	err = put_time(out, e->time_ns);
	if (err) {
		/* leave `out` as it was */
		out->len = start;
		if (out->buf)
			out->buf[start] = '\0';
		return err;
	}
	put_field(out, "type", ev->type, false);
	put_field(out, "reason", ev->reason, false);
	put_field(out, "message", ev->message, false);
	strbuf_puts(out, ",\"involvedObject\":{");
	put_field(out, "kind", ev->object.kind, true);
	if (ev->object.namespace_ && ev->object.namespace_[0])
		put_field(out, "namespace", ev->object.namespace_, false);
	put_field(out, "name", ev->object.name, false);
	if (ev->object.uid && ev->object.uid[0])
		put_field(out, "uid", ev->object.uid, false);
	if (ev->object.field_path && ev->object.field_path[0])
		put_field(out, "fieldPath", ev->object.field_path, false);
	strbuf_printf(out, "},\"count\":%d", (int)e->count);
	put_field(out, "node", e->node, false);
	put_field(out, "outcome", e->outcome, false);
	if (e->event_name && e->event_name[0]) {
		strbuf_puts(out, ",\"event\":{");
		put_field(out, "namespace", k8s_event_namespace(ev), true);
		put_field(out, "name", e->event_name, false);
		strbuf_putc(out, '}');
	}
	strbuf_puts(out, "}\n");
	return out->oom ? -ENOMEM : 0;
}

int event_log_open(const char *path, struct event_log **out)
{
	struct event_log *log;
	int err;

	*out = NULL;
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	snprintf(log->path, sizeof(log->path), "%s", path);
	if (!strcmp(path, "-")) {
		log->fd = STDOUT_FILENO;
		log->is_stdout = true;
	} else {
		log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (log->fd < 0) {
			err = -errno;
			free(log);
			return err;
		}
	}
	err = pthread_mutex_init(&log->lock, NULL);
	if (err) {
		if (!log->is_stdout)
			close(log->fd);
		free(log);
		return -err;
	}
	*out = log;
	return 0;
}

/* All of it, across short writes and signals. */
static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void event_log_write(struct event_log *log, const struct event_log_entry *e)
{
	int err;

	if (!log || !e)
		return;
	pthread_mutex_lock(&log->lock);
	strbuf_reset(&log->line);
	err = event_log_line(e, &log->line);
	if (!err)
		err = write_all(log->fd, log->line.buf, log->line.len);
	if (err && !log->error_logged) {
		log_warn("cannot write an Event to the events log %s: %s (logged once)", log->path, strerror(-err));
		log->error_logged = true;
	}
	pthread_mutex_unlock(&log->lock);
}

void event_log_close(struct event_log *log)
{
	if (!log)
		return;
	if (!log->is_stdout)
		close(log->fd);
	pthread_mutex_destroy(&log->lock);
	strbuf_free(&log->line);
	free(log);
}
