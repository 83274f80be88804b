/* hqpool.c - see hqpool.h. */
#include "hq/hqpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "hq/hqdb.h"

struct hqpool {
	pthread_mutex_t lock;
	const struct hq_config *cfg;
	struct hqsql **idle; /* max entries */
	unsigned n, max;
};

int hqpool_new(const struct hq_config *cfg, unsigned max_idle, struct hqpool **ret,
	       struct fs_error *err)
{
	struct hqpool *p = calloc(1, sizeof(*p));

	if (!p || !(p->idle = calloc(max_idle ? max_idle : 1, sizeof(*p->idle)))) {
		free(p);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&p->lock, NULL);
	p->cfg = cfg;
	p->max = max_idle;
	*ret = p;
	return 0;
}

int hqpool_get(struct hqpool *p, struct hqsql **ret, struct fs_error *err)
{
	struct hqsql *db = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->n)
		db = p->idle[--p->n];
	pthread_mutex_unlock(&p->lock);
	if (db) {
		*ret = db;
		return 0;
	}
	return hqdb_connect(p->cfg, ret, err);
}

void hqpool_put(struct hqpool *p, struct hqsql *db)
{
	if (!db)
		return;
	/* A request that failed half-way may leave a transaction open, or a
	 * server that went away: neither goes to the next request. */
	if (hqsql_usable(db)) {
		pthread_mutex_lock(&p->lock);
		if (p->n < p->max) {
			p->idle[p->n++] = db;
			db = NULL;
		}
		pthread_mutex_unlock(&p->lock);
	}
	hqdb_close(db);
}

void hqpool_free(struct hqpool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		hqdb_close(p->idle[i]);
	pthread_mutex_destroy(&p->lock);
	free(p->idle);
	free(p);
}
