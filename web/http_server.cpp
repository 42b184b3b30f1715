#include "web/http_server.hpp"
