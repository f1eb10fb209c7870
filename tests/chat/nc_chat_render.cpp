// nc_chat_render: renders chat templates with nc::chat::ChatTemplate, for the differential test
// against Python Jinja2 (jinja_diff.py) and for trying templates by hand.
//
//   nc_chat_render < case.json              {"template": "...", "context": {...}, "now": "..."}
//                                           prints the render, or "ERROR: <status>" (exit 1)
//   nc_chat_render TEMPLATE CONTEXT.json    the same from files
//   nc_chat_render --batch < cases.jsonl    one case per line in, one JSON line out per case:
//                                           {"ok": true, "output": "..."} or
//                                           {"ok": false, "code": "InvalidArgument", "error": "..."}
// "now" (optional, "YYYY-MM-DDTHH:MM:SS") fixes what strftime_now() formats.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/chat/chat_template.h"

namespace {

using nlohmann::ordered_json;

bool parse_now(const std::string& s, std::tm* tm) {
  *tm = {};
  int y, mo, d, h, mi, sec;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6) return false;
  tm->tm_year = y - 1900;
  tm->tm_mon = mo - 1;
  tm->tm_mday = d;
  tm->tm_hour = h;
  tm->tm_min = mi;
  tm->tm_sec = sec;
  std::tm copy = *tm;
  timegm(&copy);  // fills tm_wday / tm_yday
  tm->tm_wday = copy.tm_wday;
  tm->tm_yday = copy.tm_yday;
  tm->tm_isdst = -1;
  return true;
}

nc::Result<std::string> render_case(const ordered_json& c, std::map<std::string, nc::chat::ChatTemplate>* cache) {
  if (!c.is_object() || !c.contains("template") || !c["template"].is_string()) {
    return nc::invalid_argument("case needs a \"template\" string");
  }
  const std::string& source = c["template"].get_ref<const std::string&>();
  nc::chat::RenderOptions options;
  if (c.contains("now")) {
    std::tm tm;
    if (!c["now"].is_string() || !parse_now(c["now"].get<std::string>(), &tm)) {
      return nc::invalid_argument("\"now\" must be YYYY-MM-DDTHH:MM:SS");
    }
    options.now = tm;
  }
  auto it = cache->find(source);
  if (it == cache->end()) {
    auto parsed = nc::chat::ChatTemplate::parse(source);
    if (!parsed.is_ok()) return parsed.status();
    it = cache->emplace(source, std::move(*parsed)).first;
  }
  static const ordered_json kEmpty = ordered_json::object();
  return it->second.render(c.contains("context") ? c["context"] : kEmpty, options);
}

std::string read_all(std::istream& in) {
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, nc::chat::ChatTemplate> cache;
  if (argc == 2 && std::string(argv[1]) == "--batch") {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      ordered_json out;
      const ordered_json c = ordered_json::parse(line, nullptr, false);
      if (c.is_discarded()) {
        out = {{"ok", false}, {"code", "InvalidArgument"}, {"error", "bad JSON line"}};
      } else {
        auto r = render_case(c, &cache);
        if (r.is_ok()) {
          out = {{"ok", true}, {"output", *r}};
        } else {
          out = {{"ok", false},
                 {"code", std::string(nc::status_code_name(r.status().code()))},
                 {"error", r.status().message()}};
        }
      }
      std::cout << out.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n" << std::flush;
    }
    return 0;
  }
  ordered_json c;
  if (argc == 3) {
    std::ifstream tf(argv[1]), cf(argv[2]);
    if (!tf || !cf) {
      std::cerr << "cannot open " << (tf ? argv[2] : argv[1]) << "\n";
      return 2;
    }
    c = {{"template", read_all(tf)}, {"context", ordered_json::parse(read_all(cf), nullptr, false)}};
    if (c["context"].is_discarded()) {
      std::cerr << "bad context JSON\n";
      return 2;
    }
  } else if (argc == 1) {
    c = ordered_json::parse(read_all(std::cin), nullptr, false);
    if (c.is_discarded()) {
      std::cerr << "bad JSON on stdin\n";
      return 2;
    }
  } else {
    std::cerr << "usage: nc_chat_render [--batch | TEMPLATE CONTEXT.json] (or a JSON case on stdin)\n";
    return 2;
  }
  auto r = render_case(c, &cache);
  if (!r.is_ok()) {
    std::cout << "ERROR: " << r.status().to_string() << "\n";
    return 1;
  }
  std::cout << *r;
  return 0;
}
