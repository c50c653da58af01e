/* Arrival schedule: see schedule.h for the formulas. */
#include "load/schedule.h"

#include <math.h>

int64_t load_phase_arrivals(const struct load_phase *p)
{
    double secs = (double)p->duration_ms / 1000, total;

    if (p->pause || p->duration_ms <= 0)
        return 0;
    if (p->arrival_count >= 0)
        return p->arrival_count;
    if (p->ramp_to >= 0)
        total = (p->arrival_rate + p->ramp_to) / 2 * secs;
    else
        total = p->arrival_rate * secs;
    /* the epsilon keeps 2.0000000001 (float noise) from becoming 3 */
    return total <= 0 ? 0 : (int64_t)ceil(total - 1e-9);
}

double load_phase_arrival_ms(const struct load_phase *p, int64_t k)
{
    double secs = (double)p->duration_ms / 1000, a, b, t;

    if (k <= 0)
        return 0;
    if (p->arrival_count >= 0)
        return p->arrival_count ? (double)k * (double)p->duration_ms / (double)p->arrival_count : 0;
    b = p->arrival_rate;
    a = p->ramp_to >= 0 ? (p->ramp_to - p->arrival_rate) / (2 * secs) : 0;
    /* root of a t^2 + b t - k = 0 in the form that stays stable when a is 0 or negative */
    t = 2 * (double)k / (b + sqrt(fmax(b * b + 4 * a * (double)k, 0)));
    t *= 1000;
    return t < (double)p->duration_ms ? t : (double)p->duration_ms;
}

void load_schedule_init(struct load_schedule *s, const struct load_phase *phases, size_t n)
{
    *s = (struct load_schedule){.phases = phases, .n_phases = n};
    if (n)
        s->count = load_phase_arrivals(&phases[0]);
}

bool load_schedule_next(struct load_schedule *s, double *t_ms, size_t *phase)
{
    while (s->phase < s->n_phases && s->k >= s->count) {
        s->phase_start_ms += s->phases[s->phase].duration_ms;
        s->phase++;
        s->k = 0;
        if (s->phase < s->n_phases)
            s->count = load_phase_arrivals(&s->phases[s->phase]);
    }
    if (s->phase >= s->n_phases)
        return false;
    *t_ms = (double)s->phase_start_ms + load_phase_arrival_ms(&s->phases[s->phase], s->k);
    *phase = s->phase;
    s->k++;
    s->index++;
    return true;
}
