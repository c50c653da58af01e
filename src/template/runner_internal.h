/* The runner's state, shared by runner.c (renders, watches) and output.c (files, commands). */
#ifndef MESH_TEMPLATE_RUNNER_INTERNAL_H
#define MESH_TEMPLATE_RUNNER_INTERNAL_H

#include <uv.h>

#include "lib/smap.h"
#include "template/runner.h"
#include "template/tmpl.h"

struct tmpl_runner;

/* One template and its output. */
struct tmpl_job {
    struct tmpl_runner *r;
    const struct tmpl_spec *spec;
    struct tmpl *t;
    struct tmpl_used used; /* what the last render touched */
    bool rendered;         /* a complete render happened: later changes wait for quiescence */
    /* quiescence */
    uv_timer_t wait_timer;
    uint64_t deadline_ms; /* 0 when no burst is open */
    /* the file */
    uv_work_t work;
    bool writing;
    char *write_content;                 /* what the write in flight puts */
    struct tmpl_file_write *write_files; /* and writeToFile's files, written first */
    size_t nwrite_files;
    char *next_content; /* a newer render waiting for it */
    struct tmpl_file_write *next_files;
    size_t nnext_files;
    char *printed; /* dry mode: the last content printed */
    bool done;     /* once mode: written and its command finished */
    /* the command */
    uv_process_t proc;
    uv_timer_t cmd_timer;
    bool cmd_running, cmd_again, cmd_timed_out;
};

struct tmpl_runner {
    uv_loop_t loop;
    const struct tmpl_runner_config *cfg;
    struct http_client *client;
    struct smap store;   /* dependency id -> json_t * (owned) */
    struct smap watches; /* dependency id -> struct tmpl_watch * */
    struct tmpl_job *jobs;
    size_t njobs;
    uv_signal_t sig_int, sig_term, sig_hup;
    uv_work_t reload_work;
    bool reloading, stopping;
    int status; /* exit status */
};

/*
 * output.c: writes the files of writeToFile (n of them, taken), then puts content (taken) into
 * the job's file, then runs its command if the file changed. A writeToFile that fails leaves
 * the job's file as it was, as its error stops consul-template's render.
 */
void tmpl_job_output(struct tmpl_job *j, char *content, struct tmpl_file_write *files, size_t n);
/* output.c: true once nothing of the job is in flight (no write, no command). */
bool tmpl_job_idle(const struct tmpl_job *j);
/* runner.c: once mode's check after a job finished; stops the loop when all are done. */
void tmpl_runner_job_done(struct tmpl_runner *r, struct tmpl_job *j, bool ok);

#endif
