/* Stands in for a modular QEMU build: it carries a build stamp (as QEMU's module loader does) and its module
 * directory as strings, and does not link libiscsi. */
static const char *volatile strings[] = {"qemu_stamp_0123456789abcdef0123456789abcdef01234567",
                                         "/usr/lib/x86_64-linux-gnu/qemu"};

int main(void) { return strings[0][0] == 'x'; }
