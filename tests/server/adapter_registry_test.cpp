// AdapterRegistry (server/adapter_registry.h): adapters resident within a budget, evicted least
// recently used when idle, never while a request holds them, private to their organization, and safe
// to acquire from many threads while others load and evict.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "engine/model/synth.h"
#include "server/adapter_registry.h"

namespace nc::server {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("nc-adapter-registry-" + std::to_string(::getpid()));
  std::unique_ptr<engine::Model> base;
  std::vector<std::string> adapters;
  size_t one = 0;  // one adapter's bytes in memory

  Fixture() {
    fs::create_directories(dir);
    engine::SynthOptions o;
    o.vocab_path = "builtin:64";
    o.shape = "micro";
    o.type = "f32";
    o.out_path = (dir / "base.gguf").string();
    EXPECT_TRUE(engine::synth_model(o).is_ok());
    auto m = engine::Model::load(o.out_path, {.prefault = false});
    EXPECT_TRUE(m.is_ok());
    base = std::move(*m);
    for (int i = 0; i < 4; ++i) {
      engine::SynthLoraOptions lo;
      lo.base_path = o.out_path;
      lo.rank = 4;
      lo.seed = static_cast<uint64_t>(i + 1);
      lo.out_path = (dir / ("a" + std::to_string(i) + ".gguf")).string();
      EXPECT_TRUE(engine::synth_lora(lo).is_ok());
      adapters.push_back(lo.out_path);
    }
    auto a = engine::LoraAdapter::load(adapters[0], *base);
    one = (*a)->bytes();
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  AdapterSpec spec(int i, const std::string& org = "") {
    return {"ad" + std::to_string(i), "base", adapters[static_cast<size_t>(i)], org};
  }
};

TEST(AdapterRegistry, EvictsIdleAdaptersLeastRecentlyUsedAndNeverOneInUse) {
  Fixture f;
  AdapterRegistry reg(2 * f.one + f.one / 2);  // room for two
  ASSERT_TRUE(reg.add(f.spec(0), *f.base).is_ok());
  ASSERT_TRUE(reg.add(f.spec(1), *f.base).is_ok());
  ASSERT_TRUE(reg.acquire("ad0", "").is_ok());  // ad0 is now the more recently used
  ASSERT_TRUE(reg.add(f.spec(2), *f.base).is_ok());  // evicts ad1
  auto resident = [&](const std::string& id) {
    for (const auto& i : reg.list("")) if (i.spec.id == id) return i.resident;
    return false;
  };
  EXPECT_TRUE(resident("ad0"));
  EXPECT_FALSE(resident("ad1"));
  EXPECT_TRUE(resident("ad2"));
  EXPECT_LE(reg.resident_bytes(), reg.budget());
  // Held by two "requests": ad1 cannot be made resident.
  auto h0 = reg.acquire("ad0", ""), h2 = reg.acquire("ad2", "");
  ASSERT_TRUE(h0.is_ok() && h2.is_ok());
  auto full = reg.acquire("ad1", "");
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("retry later"), std::string::npos);
  // A removed adapter stays usable by its holder.
  const auto held = h0->adapter;
  ASSERT_TRUE(reg.remove("ad0").is_ok());
  EXPECT_EQ(held->base(), f.base.get());
  EXPECT_EQ(reg.acquire("ad0", "").status().code(), StatusCode::kNotFound);
  h0 = Result<AdapterRegistry::Acquired>(not_found(""));
  EXPECT_TRUE(reg.acquire("ad1", "").is_ok());  // room again
  EXPECT_EQ(reg.add(f.spec(1), *f.base).code(), StatusCode::kAlreadyExists);
}

TEST(AdapterRegistry, PrivateAdaptersAreUnknownToOtherOrganizations) {
  Fixture f;
  AdapterRegistry reg(10 * f.one);
  ASSERT_TRUE(reg.add(f.spec(0, "org_a"), *f.base).is_ok());
  ASSERT_TRUE(reg.add(f.spec(1), *f.base).is_ok());
  EXPECT_TRUE(reg.acquire("ad0", "org_a").is_ok());
  EXPECT_EQ(reg.acquire("ad0", "org_b").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(reg.acquire("ad1", "org_b").is_ok());
  EXPECT_EQ(reg.list("org_b").size(), 1u);
  EXPECT_EQ(reg.list("org_a").size(), 2u);
  EXPECT_EQ(reg.list("").size(), 2u);
}

TEST(AdapterRegistry, ManyThreadsAcquireWhileAdaptersLoadAndEvict) {
  Fixture f;
  AdapterRegistry reg(2 * f.one + f.one / 2);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(reg.add(f.spec(i), *f.base).is_ok());
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        auto a = reg.acquire("ad" + std::to_string((t + i) % 4), "");
        if (a.is_ok() && a->adapter && a->adapter->n_weights() > 0) ++ok;
        else if (a.status().code() == StatusCode::kResourceExhausted) ++busy;
        else ++other;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(ok.load() + busy.load(), 240);
  EXPECT_LE(reg.resident_bytes(), reg.budget());  // nothing held now: within the budget
}

}  // namespace
}  // namespace nc::server
