#include "lan-agent/edge_policy.hpp"

#include <doctest/doctest.h>

using namespace tsunagu::lanagent;

TEST_CASE("policy: the default lets every authenticated caller reach every extension") {
  EdgePolicy policy;
  CHECK(policy.decide("4106", "alice").allowed);
  CHECK(policy.decide("4106", "bob@other").allowed);
  CHECK_FALSE(policy.decide("4106", "alice").rule.has_value());
}

TEST_CASE("policy: patterns match exactly, by prefix, by domain or anything") {
  CHECK(pattern_matches("*", "x"));
  CHECK(pattern_matches("alice", "alice"));
  CHECK_FALSE(pattern_matches("alice", "alice@acme"));
  CHECK(pattern_matches("41*", "4106"));
  CHECK_FALSE(pattern_matches("41*", "5106"));
  CHECK(pattern_matches("*@acme", "bob@acme"));
  CHECK(pattern_matches("@acme", "bob@acme"));
  CHECK_FALSE(pattern_matches("*@acme", "bob@acme2"));
  CHECK_FALSE(pattern_matches("*@acme", "@acme"));
  CHECK_FALSE(pattern_matches("*@acme", "bob@notacme"));
  CHECK_FALSE(pattern_matches("", "x"));
}

TEST_CASE("policy: unusable patterns are reported") {
  CHECK_FALSE(check_pattern("41*").has_value());
  CHECK_FALSE(check_pattern("*@acme").has_value());
  CHECK(check_pattern("").has_value());
  CHECK(check_pattern("4*1*").has_value());
  CHECK(check_pattern("*41").has_value());
  CHECK(check_pattern("a b").has_value());
  CHECK(check_pattern("*@").has_value());
  CHECK(check_pattern(std::string(129, 'a')).has_value());
}

TEST_CASE("policy: the first rule whose extensions match decides") {
  EdgePolicyConfig config;
  config.rules.push_back({{"9*"}, {}, {"*"}});                          // 9xxx: nobody from outside
  config.rules.push_back({{"4106"}, {"alice", "*@acme"}, {}});         // 4106: alice and acme only
  config.rules.push_back({{"*"}, {}, {"mallory", "*@spam.example"}});  // the rest: all but these
  EdgePolicy policy(config);
  CHECK_FALSE(policy.decide("9001", "alice").allowed);
  CHECK(*policy.decide("9001", "alice").rule == 0);
  CHECK(policy.decide("4106", "alice").allowed);
  CHECK(policy.decide("4106", "carol@acme").allowed);
  CHECK_FALSE(policy.decide("4106", "bob").allowed);
  CHECK(policy.decide("4107", "bob").allowed);
  CHECK_FALSE(policy.decide("4107", "mallory").allowed);
  CHECK_FALSE(policy.decide("4107", "eve@spam.example").allowed);
}

TEST_CASE("policy: default deny refuses what no rule allows") {
  EdgePolicyConfig config;
  config.default_allow = false;
  config.rules.push_back({{"4106"}, {}, {}});
  EdgePolicy policy(config);
  CHECK(policy.decide("4106", "anyone").allowed);
  CHECK_FALSE(policy.decide("4107", "anyone").allowed);
  CHECK_FALSE(policy.decide("4107", "anyone").rule.has_value());
}
