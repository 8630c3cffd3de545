/* A shared object that is not a volume driver: it lacks the entry point. */
int not_a_volume_driver(void);
int not_a_volume_driver(void) { return 42; }
