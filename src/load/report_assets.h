/* The report page's stylesheet and script, embedded at build time from src/load/assets/. */
#ifndef MESH_LOAD_REPORT_ASSETS_H
#define MESH_LOAD_REPORT_ASSETS_H

/* NUL-terminated text of assets/report.css and assets/report.js. */
extern const char load_report_css[];
extern const char load_report_js[];

#endif
