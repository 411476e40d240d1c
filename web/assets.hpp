#pragma once
// The web view's files, embedded in the binary at build time (cmake/embed.cmake): the
// page loads nothing from anywhere else.
#include <string_view>

namespace lockstep::web::assets {
std::string_view index_html();
std::string_view app_js();
std::string_view app_css();
}  // namespace lockstep::web::assets
