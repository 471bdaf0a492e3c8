// <n3net.h> alone, compiled as strict C++11 (-std=c++11 -Wall -Wextra
// -pedantic -Werror). The link step resolves n3net_version only if the header
// declares it with C linkage (extern "C").
#include <n3net.h>

int main()
{
    return n3net_version()[0] == '\0';
}
