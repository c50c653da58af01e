#include "lib/vivaldi.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The tuning Consul ships (serf/coordinate's DefaultConfig). */
#define ERROR_MAX   1.5    /* a new node's error, and the cap */
#define CE          0.25   /* how fast the error estimate follows */
#define CC          0.25   /* how far one sample moves the point */
#define HEIGHT_MIN  10e-6  /* seconds */
#define GRAVITY_RHO 150.0  /* how strongly points are pulled back to the origin */
#define ZERO        1.0e-6 /* below this a distance counts as zero */

void vivaldi_coord_init(struct vivaldi_coord *c)
{
    memset(c, 0, sizeof(*c));
    c->error = ERROR_MAX;
    c->height = HEIGHT_MIN;
}

bool vivaldi_coord_valid(const struct vivaldi_coord *c)
{
    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        if (!isfinite(c->vec[i]))
            return false;
    return isfinite(c->error) && isfinite(c->adjustment) && isfinite(c->height);
}

static double norm(const double *v)
{
    double sum = 0;
    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        sum += v[i] * v[i];
    return sqrt(sum);
}

/* Distance without the adjustment terms: the Euclidean part plus both heights. */
static double raw_distance(const struct vivaldi_coord *a, const struct vivaldi_coord *b)
{
    double d[VIVALDI_DIMENSIONS];

    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        d[i] = a->vec[i] - b->vec[i];
    return norm(d) + a->height + b->height;
}

double vivaldi_distance(const struct vivaldi_coord *a, const struct vivaldi_coord *b)
{
    double dist = raw_distance(a, b);
    double adjusted = dist + a->adjustment + b->adjustment;
    return adjusted > 0 ? adjusted : dist;
}

/* The unit vector from b towards a, and their distance; a random direction when they meet. */
static double unit_from(const struct vivaldi_coord *a, const struct vivaldi_coord *b, double *u)
{
    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        u[i] = a->vec[i] - b->vec[i];
    double mag = norm(u);
    if (mag > ZERO) {
        for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
            u[i] /= mag;
        return mag;
    }
    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        u[i] = (double)rand() / RAND_MAX - 0.5;
    double r = norm(u);
    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        u[i] = r > ZERO ? u[i] / r : (i == 0);
    return 0;
}

/* Moves c by force (seconds; positive pushes it away from other), the height with it. */
static void apply_force(struct vivaldi_coord *c, double force, const struct vivaldi_coord *other)
{
    double u[VIVALDI_DIMENSIONS];
    double mag = unit_from(c, other, u);

    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        c->vec[i] += u[i] * force;
    if (mag > ZERO) {
        c->height = (c->height + other->height) * force / mag + c->height;
        if (c->height < HEIGHT_MIN)
            c->height = HEIGHT_MIN;
    }
}

void vivaldi_client_init(struct vivaldi_client *v)
{
    memset(v, 0, sizeof(*v));
    vivaldi_coord_init(&v->coord);
    vivaldi_coord_init(&v->origin);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of the peer's last few RTTs: one slow sample does not throw the point. */
static double filtered_rtt(struct vivaldi_client *v, const char *peer, double rtt)
{
    struct vivaldi_peer *p = NULL;

    for (size_t i = 0; i < v->npeers && !p; i++)
        if (strncmp(v->peers[i].name, peer, sizeof(p->name) - 1) == 0)
            p = &v->peers[i];
    if (!p) {
        /* A new peer takes a free slot, or the oldest one's. */
        p = &v->peers[v->npeers < 8 ? v->npeers++ : 0];
        memset(p, 0, sizeof(*p));
        strncat(p->name, peer, sizeof(p->name) - 1);
    }
    if (p->n == VIVALDI_LATENCY_FILTER) {
        memmove(p->samples, p->samples + 1, (VIVALDI_LATENCY_FILTER - 1) * sizeof(double));
        p->n--;
    }
    p->samples[p->n++] = rtt;
    double sorted[VIVALDI_LATENCY_FILTER];
    memcpy(sorted, p->samples, p->n * sizeof(double));
    qsort(sorted, p->n, sizeof(double), cmp_double);
    return sorted[p->n / 2];
}

int vivaldi_update(struct vivaldi_client *v, const char *peer, const struct vivaldi_coord *other,
                   double rtt)
{
    if (!vivaldi_coord_valid(other) || !isfinite(rtt) || rtt < 0 || rtt > 10.0)
        return -EINVAL;
    struct vivaldi_coord before = v->coord;
    rtt = filtered_rtt(v, peer, rtt);
    if (rtt < ZERO)
        rtt = ZERO;

    /* Vivaldi: weigh the sample by how sure this node is relative to the peer, track the
     * relative error, and move along the line between the two points. */
    double dist = vivaldi_distance(&v->coord, other);
    double wrongness = fabs(dist - rtt) / rtt;
    double total = v->coord.error + other->error;
    double weight = v->coord.error / (total < ZERO ? ZERO : total);
    v->coord.error = CE * weight * wrongness + v->coord.error * (1.0 - CE * weight);
    if (v->coord.error > ERROR_MAX)
        v->coord.error = ERROR_MAX;
    apply_force(&v->coord, CC * weight * (rtt - dist), other);

    /* Adjustment: the mean of recent residuals (halved: both ends add theirs). */
    v->adjustment_samples[v->adjustment_index] = rtt - raw_distance(&v->coord, other);
    v->adjustment_index = (v->adjustment_index + 1) % VIVALDI_ADJUSTMENT_WINDOW;
    double sum = 0;
    for (int i = 0; i < VIVALDI_ADJUSTMENT_WINDOW; i++)
        sum += v->adjustment_samples[i];
    v->coord.adjustment = sum / (2.0 * VIVALDI_ADJUSTMENT_WINDOW);

    /* Gravity keeps the whole system from drifting away from the origin. */
    double g = vivaldi_distance(&v->origin, &v->coord) / GRAVITY_RHO;
    apply_force(&v->coord, -g * g, &v->origin);

    if (!vivaldi_coord_valid(&v->coord)) {
        v->coord = before;
        vivaldi_coord_init(&v->coord);
    }
    return 0;
}
