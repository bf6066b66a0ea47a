/* The library version string, taken from configure's package version. */
#include "config.h"
#include "nlp.h"

const char *nlp_version(void)
{
    return PACKAGE_VERSION;
}
