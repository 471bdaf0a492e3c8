/* <n3net.h> alone, compiled as strict C99 (-std=c99 -Wall -Wextra -pedantic
 * -Werror): the header must include what it uses and be valid ISO C. The call
 * lets the link step check that the declared names exist. */
#include <n3net.h>

int main(void)
{
    return n3net_version()[0] == '\0';
}
