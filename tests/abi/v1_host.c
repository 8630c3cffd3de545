/* A host compiled against version 1 of the header (tests/abi/v1, a copy of it as released): it must get exactly
 * version 1's table and behaviour from today's module. Usage: v1_host MODULE. Exit 0 when every check holds. */
#include <volume_driver/volume_driver.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond, what)                                      \
    do {                                                       \
        if (!(cond)) {                                         \
            fprintf(stderr, "v1_host: FAILED: %s\n", what);    \
            ++failures;                                        \
        }                                                      \
    } while (0)

static int lines = 0;
static void log_line(void *user, int32_t level, const char *component, const char *message) {
    (void)level;
    (void)component;
    (void)message;
    CHECK(user == (void *)&lines, "log user_data is this host's");
    ++lines;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) return fprintf(stderr, "%s\n", dlerror()), 2;
    vd_negotiate_fn negotiate = (vd_negotiate_fn)(size_t)dlsym(module, VOLUME_DRIVER_ENTRY_NAME);
    if (negotiate == NULL) return 2;
    vd_host_table host = {sizeof(vd_host_table), &lines, log_line};
    uint32_t version = VD_ABI_VERSION_CURRENT;
    const vd_driver_table *t = NULL;
    CHECK(VD_ABI_VERSION_CURRENT == 1u, "compiled against the version 1 header");
    CHECK(negotiate(&version, &host, &t) == VD_OK && t != NULL, "negotiation succeeds");
    if (t == NULL) return 1;
    CHECK(version == 1u && t->abi_version == 1u, "version 1 is answered");
    CHECK(t->struct_size == sizeof(vd_driver_table), "the table is exactly version 1's size");
    CHECK(t->extend_volume == NULL, "extend_volume is NULL in version 1");
    vd_driver *d = NULL;
    CHECK(t->create("{\"v1_host_unknown_key\": 1}", &d) == VD_OK && d != NULL, "create() works");
    CHECK(lines > 0, "create() logged the unknown key through the negotiated callback");
    char *info = NULL;
    const char *ci = "{\"driver_volume_type\":\"iscsi\",\"data\":{\"target_portal\":\"127.0.0.1:3260\","
                     "\"target_iqn\":\"iqn.2010-10.org.openstack:v1\",\"target_lun\":1}}";
    const char *connector = "{\"initiator\":\"iqn.1993-08.org.debian:01:v1host\"}";
    CHECK(t->connect_volume(d, ci, connector, NULL, 0, &info) == VD_E_INVALID_ARGUMENT && info == NULL,
          "connect without disk_info.dev is refused, as in version 1");
    CHECK(strstr(t->last_error(), "\"field\":\"dev\"") != NULL, "the error names disk_info dev");
    t->destroy(d);
    dlclose(module);
    return failures == 0 ? 0 : 1;
}
