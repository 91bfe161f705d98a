// The token journal (engine/token_journal.hpp): what a restarted server reads back.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/token_journal.hpp"

namespace pomelo::engine {
namespace {

namespace fs = std::filesystem;

struct Dir {
    fs::path path = fs::temp_directory_path() / ("pomelo-journal-" + std::to_string(::getpid()) + "-" +
                                                 testing::UnitTest::GetInstance()->current_test_info()->name());
    Dir() { fs::remove_all(path); }
    ~Dir() { fs::remove_all(path); }
    std::string file() const { return (path / "sub" / "tokens").string(); }
};

TokenJournal::Record rec(uint8_t i, uint64_t expire_ms) {
    TokenJournal::Record r{};
    r.tag.fill(i);
    r.expire_ms = expire_ms;
    return r;
}

TEST(TokenJournal, KeepsLiveRecordsAcrossReopenAndCompactsExpiredOnes) {
    Dir d;
    std::vector<TokenJournal::Record> live;
    std::string error;
    {
        TokenJournal j;
        ASSERT_TRUE(j.open(d.file(), 1000, live, error)) << error;  // creates the directory
        EXPECT_TRUE(live.empty());
        const TokenJournal::Record batch[] = {rec(1, 5000), rec(2, 1500), rec(3, 9000)};
        ASSERT_TRUE(j.append(batch, error)) << error;
        EXPECT_EQ(fs::status(d.file()).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    }
    TokenJournal j;
    ASSERT_TRUE(j.open(d.file(), 2000, live, error)) << error;
    ASSERT_EQ(live.size(), 2u);  // record 2 expired at 1500
    EXPECT_EQ(live[0].tag[0], 1);
    EXPECT_EQ(live[0].expire_ms, 5000u);
    EXPECT_EQ(live[1].tag[0], 3);
    EXPECT_EQ(fs::file_size(d.file()), 2u * 24u) << "compacted to the live records";
}

TEST(TokenJournal, ATornLastRecordIsIgnored) {
    Dir d;
    std::vector<TokenJournal::Record> live;
    std::string error;
    {
        TokenJournal j;
        ASSERT_TRUE(j.open(d.file(), 0, live, error)) << error;
        const TokenJournal::Record batch[] = {rec(7, 5000)};
        ASSERT_TRUE(j.append(batch, error));
    }
    {
        std::ofstream f(d.file(), std::ios::app | std::ios::binary);
        f.write("\x01\x02\x03\x04\x05", 5);  // a crash mid-write
    }
    TokenJournal j;
    ASSERT_TRUE(j.open(d.file(), 0, live, error)) << error;
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(live[0].tag[0], 7);
}

TEST(TokenJournal, TwoServersCannotShareOneJournal) {
    Dir d;
    std::vector<TokenJournal::Record> live;
    std::string error;
    TokenJournal a, b;
    ASSERT_TRUE(a.open(d.file(), 0, live, error)) << error;
    EXPECT_FALSE(b.open(d.file(), 0, live, error));
    EXPECT_NE(error.find("in use by another"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
    a.close();
    EXPECT_TRUE(b.open(d.file(), 0, live, error)) << error;
}

TEST(TokenJournal, AnUnwritablePathIsOneLine) {
    std::vector<TokenJournal::Record> live;
    std::string error;
    TokenJournal j;
    EXPECT_FALSE(j.open("/proc/pomelo-no/such/journal", 0, live, error));
    EXPECT_NE(error.find("/proc/pomelo-no/such/journal"), std::string::npos) << error;
}

}  // namespace
}  // namespace pomelo::engine
