/* The module's one header: liblease's, found through pkg-config's include path. */
#include <lease.h>
