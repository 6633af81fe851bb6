/* kvmpager SDK runtime: the default main() of zxtest programs (an archive member, so a
 * program's own main() wins). */
#include <stddef.h>
#include <zxtest/zxtest.h>

int main(void) { return RUN_ALL_TESTS(0, NULL); }
