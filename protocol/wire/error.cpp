#include "protocol/wire/error.hpp"

#include "protocol/wire/constants.hpp"

namespace pomelo::wire {

const char* to_string(WireError error) {
    switch (error) {
#define POMELO_X(name, text) \
    case WireError::name:    \
        return text;
        POMELO_WIRE_ERRORS(POMELO_X)
#undef POMELO_X
        case WireError::count_:
            break;
    }
    return "unknown error";
}

const char* name_of(WireError error) {
    switch (error) {
#define POMELO_X(name, text) \
    case WireError::name:    \
        return #name;
        POMELO_WIRE_ERRORS(POMELO_X)
#undef POMELO_X
        case WireError::count_:
            break;
    }
    return "unknown";
}

const char* to_string(PacketType type) {
    static constexpr const char* kNames[kPacketTypeCount] = {"request", "denied",  "challenge",  "response",
                                                             "ping",    "payload", "disconnect", "pong"};
    auto i = static_cast<unsigned>(type);
    return i < kPacketTypeCount ? kNames[i] : "invalid";
}

}  // namespace pomelo::wire
