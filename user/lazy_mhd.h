/* libmicrohttpd, opened on first use (lazy_mhd.c). */
#ifndef KSIGHT_LAZY_MHD_H
#define KSIGHT_LAZY_MHD_H

/* Open it now on a thread of its own (the endpoint will need it), so that the first call does not wait. */
void lazy_mhd_prefetch(void);

#endif
