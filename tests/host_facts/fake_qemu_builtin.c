/* Stands in for a QEMU with the iSCSI block driver linked in: it only has to need libiscsi.so. */
#include <iscsi/iscsi.h>

int main(int argc, char **argv) {
    (void)argv;
    if (argc > 1000) iscsi_destroy_context(iscsi_create_context("iqn.2000-01.org.example:never"));
    return 0;
}
