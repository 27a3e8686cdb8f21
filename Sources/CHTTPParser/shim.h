// Joyent/Node's http_parser from Debian's libhttp-parser-dev.
#include <http_parser.h>
