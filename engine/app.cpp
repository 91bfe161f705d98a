#include "engine/app.hpp"

namespace pomelo {

const char* to_string(CloseReason reason) {
    return server::to_string(engine::to_internal_reason(reason));
}

}  // namespace pomelo
