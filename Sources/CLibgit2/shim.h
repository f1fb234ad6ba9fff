#include <git2.h>

/* git_libgit2_opts is variadic, which Swift cannot call: one wrapper per option teal sets. */
static inline int teal_git_set_ssl_cert_file(const char *file) {
    return git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, (const char *)0);
}
