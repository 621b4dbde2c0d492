/*
 * assets.h — the dashboard's page files, embedded in the mcpr binary at
 * build time (embed.cmake turns src/dashboard/assets/ into a C array per
 * file): the page fetches nothing from elsewhere and works offline.
 */
#ifndef MCPR_DASHBOARD_ASSETS_H
#define MCPR_DASHBOARD_ASSETS_H

#include <stddef.h>

typedef struct mcpr__dash_asset {
  const char *name; /* file name under src/dashboard/assets/; NULL ends the table */
  const unsigned char *data;
  size_t size;
} mcpr__dash_asset;

extern const mcpr__dash_asset mcpr__dash_assets[];

#endif
