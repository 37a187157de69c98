/* Config sections with many instances: [backend NAME], [tenant NAME],
 * [slo NAME], and the [governor] and memory settings checked across
 * sections.  The loader's common paths are in test_config.c. */
#include "shared/config.h"
#include "shared/rollout.h"
#include "tests/unit/config_fixture.h"
#include "controlplane/governor.h"

Test(config_backends, default_backend_only_without_backend_sections)
{
    struct loaded *l = load("[server]\nworkers = 1\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.n_backends, 1);
    cr_assert_not_null(config_backend_find(&l->cfg, "default"));
    done(l);

    l = load("[backend vllm]\nurl = http://127.0.0.1:8001\nkind = openai\n"
             "[backend other]\nurl = http://localhost\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.n_backends, 2);
    cr_assert_null(config_backend_find(&l->cfg, "default"));
    const struct config_backend *b = config_backend_find(&l->cfg, "vllm");
    cr_assert_not_null(b);
    cr_assert_str_eq(b->url, "http://127.0.0.1:8001");
    cr_assert_str_eq(b->host, "127.0.0.1");
    cr_assert_eq(b->port, 8001);
    cr_assert_eq(b->kind, BACKEND_OPENAI);
    cr_assert_eq(b->line, 1);
    b = config_backend_find(&l->cfg, "other");
    cr_assert_not_null(b);
    cr_assert_str_eq(b->host, "localhost");
    cr_assert_eq(b->port, 80);
    cr_assert_eq(addr_port(&b->addr), 80);
    cr_assert_eq(b->line, 4);
    cr_assert_null(config_backend_find(&l->cfg, "vll"));
    done(l);
}

Test(config_backends, good_urls)
{
    static const struct {
        const char *url, *host, *text;
        uint16_t port;
    } ok[] = {
        {"http://127.0.0.1:8000", "127.0.0.1", "127.0.0.1:8000", 8000},
        {"http://127.0.0.1:8000/", "127.0.0.1", "127.0.0.1:8000", 8000},
        {"http://127.0.0.1", "127.0.0.1", "127.0.0.1:80", 80},
        {"http://10.0.0.7/", "10.0.0.7", "10.0.0.7:80", 80},
        {"http://[::1]:8001", "[::1]", "[::1]:8001", 8001},
        {"http://[::1]", "[::1]", "[::1]:80", 80},
        {"HTTP://127.0.0.1:65535", "127.0.0.1", "127.0.0.1:65535", 65535},
        {"http://localhost:9000", "localhost", NULL, 9000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char text[256];
        snprintf(text, sizeof text, "[backend b]\nurl = %s\n", ok[i].url);
        struct loaded *l = load(text);
        expect_ok(l);
        const struct config_backend *b = &l->cfg.backends[0];
        cr_assert_str_eq(b->url, ok[i].url);
        cr_assert_str_eq(b->host, ok[i].host);
        cr_assert_eq(b->port, ok[i].port);
        cr_assert_eq(addr_port(&b->addr), ok[i].port);
        if (ok[i].text)
            cr_assert_str_eq(b->addr.text, ok[i].text);
        done(l);
    }
}

Test(config_backends, kinds_groups_and_tf_keys)
{
    struct loaded *l = load("[backend v]\nurl = http://127.0.0.1:8000\ngroup = gpu0\n"
                            "[backend o]\nurl = http://127.0.0.1:11434\nkind = ollama\n"
                            "group = gpu0\n"
                            "[backend t]\nurl = http://127.0.0.1:8501\nkind = tfserving-rest\n"
                            "tf_model = t5\ntf_signature = serving_default\ntf_input = text\n"
                            "tf_output = output_0\n");
    expect_ok(l);
    const struct config_backend *b = l->cfg.backends;
    cr_assert_eq(l->cfg.n_backends, 3);
    cr_assert_eq(b[0].kind, BACKEND_OPENAI);
    cr_assert_eq(b[1].kind, BACKEND_OLLAMA);
    cr_assert_eq(b[2].kind, BACKEND_TFSERVING);
    cr_assert_str_eq(b[0].group, "gpu0");
    cr_assert_str_eq(b[1].group, "gpu0");
    cr_assert_str_eq(b[2].group, "");
    cr_assert_str_eq(b[2].tf_model, "t5");
    cr_assert_str_eq(b[2].tf_signature, "serving_default");
    cr_assert_str_eq(b[2].tf_input, "text");
    cr_assert_str_eq(b[2].tf_output, "output_0");
    done(l);
}

Test(config_backends, bad_urls)
{
    static const struct case_ cases[] = {
        {"[backend b]\nurl = https://127.0.0.1\n",
         ":2: [backend b] url 'https://127.0.0.1' has scheme 'https', which is not supported "
         "(only http://)"},
        {"[backend b]\nurl = ftp://127.0.0.1\n",
         ":2: [backend b] url 'ftp://127.0.0.1' has scheme 'ftp', which is not supported (only "
         "http://)"},
        {"[backend b]\nurl = 127.0.0.1:8000\n",
         ":2: [backend b] url '127.0.0.1:8000' is not a URL (expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1:8000/v1\n",
         ":2: [backend b] url 'http://127.0.0.1:8000/v1' has a path, query or fragment '/v1' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1:8000//\n",
         ":2: [backend b] url 'http://127.0.0.1:8000//' has a path, query or fragment '//' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1?x=1\n",
         ":2: [backend b] url 'http://127.0.0.1?x=1' has a path, query or fragment '?x=1' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1#top\n",
         ":2: [backend b] url 'http://127.0.0.1#top' has a path, query or fragment '#top' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://user:pw@127.0.0.1:8000\n",
         ":2: [backend b] url 'http://user:pw@127.0.0.1:8000' has user info, which is not allowed "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1:0\n",
         ":2: [backend b] url 'http://127.0.0.1:0' has a bad port '0' (expected 1..65535)"},
        {"[backend b]\nurl = http://127.0.0.1:65536\n",
         ":2: [backend b] url 'http://127.0.0.1:65536' has a bad port '65536' (expected 1..65535)"},
        {"[backend b]\nurl = http://127.0.0.1:\n",
         ":2: [backend b] url 'http://127.0.0.1:' has a bad port '' (expected 1..65535)"},
        {"[backend b]\nurl = http://\n",
         ":2: [backend b] url 'http://' has no host (expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://:8000\n",
         ":2: [backend b] url 'http://:8000' has no host (expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://[::1:8000\n",
         ":2: [backend b] url 'http://[::1:8000' has no ']' after the IPv6 address"},
        {"[backend b]\nurl = http://::1:8000\n",
         ":2: [backend b] url 'http://::1:8000' needs brackets around an IPv6 address, e.g. "
         "[::1]:8080"},
        {"[backend b]\nurl = http://1.2.3/\n",
         ":2: [backend b] url 'http://1.2.3/' has a bad IPv4 address '1.2.3'"},
        {"[backend b]\nurl = http://bad_host!/\n",
         ":2: [backend b] url 'http://bad_host!/' has a bad host name 'bad_host!'"},
        {"[backend b]\nurl =\n",
         ":2: [backend b] url '' is not a URL (expected http://HOST[:PORT])"},
        {"[backend b]\nkind = grpc\nurl = http://127.0.0.1\n",
         ":2: [backend b] kind 'grpc' is not supported (supported: openai, ollama, "
         "tfserving-rest)"},
        {"[backend b]\nkind = OpenAI\nurl = http://127.0.0.1\n",
         ":2: [backend b] kind 'OpenAI' is not supported (supported: openai, ollama, "
         "tfserving-rest)"},
        {"[backend b]\nkind = openai\n", ":1: [backend b] has no url"},
        {"[backend b]\n[backend c]\nurl = http://127.0.0.1\n", ":1: [backend b] has no url"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    struct loaded *l = load("[backend b]\nurl = http://no-such-host.invalid:8000\n");
    cr_assert_eq(l->errs.n, 1);
    char want[200];
    snprintf(want, sizeof want,
             "%s:2: [backend b] url 'http://no-such-host.invalid:8000' has a host "
             "'no-such-host.invalid' that cannot be resolved (",
             l->path);
    cr_assert(strncmp(l->errs.msg[0], want, strlen(want)) == 0, "%s", l->errs.msg[0]);
    done(l);
}

Test(config_backends, duplicate_and_too_many)
{
    struct loaded *l = load("[backend a]\nurl = http://127.0.0.1\n"
                            "[backend b]\nurl = http://127.0.0.1\n"
                            "[backend a]\nurl = http://127.0.0.1:81\nkind = nope\n");
    /* the second [backend a] is refused whole: its keys are not checked */
    EXPECT_ERRORS(l, ":5: section [backend a] given twice (first at line 1)");
    done(l);

    char text[8192] = "";
    for (int i = 0; i <= CONFIG_MAX_BACKENDS; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "[backend b%d]\nurl = http://127.0.0.1:%d\n", i,
                 1000 + i);
    }
    l = load(text);
    EXPECT_ERRORS(l, ":129: too many [backend NAME] sections (at most 64)");
    done(l);
}

Test(config_tenants, keys)
{
    char text[512];
    snprintf(text, sizeof text,
             "[auth]\nenabled = yes\n[tenant acme]\nkey_sha256 = %s\n[tenant b.c-d_e]\n"
             "key_sha256 = %s\n",
             KEY_A, KEY_B);
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_eq(l->cfg.auth_enabled, true);
    cr_assert_eq(l->cfg.n_tenants, 2);
    const struct config_tenant *t = &l->cfg.tenants[0];
    cr_assert_str_eq(t->name, "acme");
    cr_assert(t->has_key);
    cr_assert_eq(t->line, 3);
    cr_assert_eq(t->key_sha256[0], 0x9f);
    cr_assert_eq(t->key_sha256[1], 0x86);
    cr_assert_eq(t->key_sha256[31], 0x08);
    t = &l->cfg.tenants[1];
    cr_assert_str_eq(t->name, "b.c-d_e");
    cr_assert_eq(t->key_sha256[0], 0x60);
    cr_assert_eq(t->key_sha256[31], 0x52);
    done(l);
}

Test(config_tenants, bad_keys)
{
    static const struct case_ cases[] = {
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0\n",
         ":2: [tenant a] key_sha256 "
         "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0' is not 64 hex digits "
         "(got 63 characters)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a088\n",
         ":2: [tenant a] key_sha256 "
         "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a088' is not 64 hex "
         "digits (got 65 characters)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g\n",
         ":2: [tenant a] key_sha256 "
         "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g' is not 64 hex digits "
         "(bad character 'g')"},
        {"[tenant a]\nkey_sha256 =\n",
         ":2: [tenant a] key_sha256 '' is not 64 hex digits (got 0 characters)"},
        {"[tenant a]\n", NULL}, /* without [auth] a tenant needs no key */
        {"[tenant a]\n[auth]\nenabled = true\n[tenant b]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
         ":1: [tenant a] has no key_sha256 (required with [auth] enabled)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
         "[tenant b]\nkey_sha256 = "
         "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n",
         ":3: [tenant b] has the same key_sha256 as [tenant a] (line 1)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n[tenant a]\n",
         ":3: section [tenant a] given twice (first at line 1)"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_tenants, auth_needs_a_keyed_tenant)
{
    static const struct case_ cases[] = {
        {"[auth]\nenabled = true\n",
         ":2: [auth] enabled = true but no [tenant NAME] has a key_sha256"},
        {"[auth]\nenabled = false\n", NULL},
        {"[auth]\n", NULL},
        /* a tenant without auth is fine: the key is not used yet */
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
         NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    /* a tenant with no key: that error, and the auth one */
    struct loaded *l = load("[tenant a]\n[auth]\nenabled = on\n");
    EXPECT_ERRORS(l, ":1: [tenant a] has no key_sha256 (required with [auth] enabled)",
                  ":3: [auth] enabled = true but no [tenant NAME] has a key_sha256");
    done(l);

    /* a bad key was reported; auth does not repeat it */
    l = load("[tenant a]\nkey_sha256 = 12\n[auth]\nenabled = on\n");
    EXPECT_ERRORS(l, ":2: [tenant a] key_sha256 '12' is not 64 hex digits (got 2 characters)");
    done(l);
}

Test(config_memory, copy_is_deep_and_free_releases)
{
    char text[4096] = "";
    for (int i = 0; i < 9; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "[backend b%d]\nurl = http://127.0.0.1:%d\n", i,
                 2000 + i);
    }
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "[tenant t%d]\nkey_sha256 = %062d%02d\n", i, 0, i);
    }
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_eq(l->cfg.n_backends, 9);
    cr_assert_eq(l->cfg.n_tenants, 7);

    struct config *copy = malloc(sizeof *copy);
    cr_assert_eq(config_copy(copy, &l->cfg), 0);
    cr_assert_neq(copy->backends, l->cfg.backends);
    cr_assert_neq(copy->tenants, l->cfg.tenants);
    cr_assert_eq(memcmp(copy, &l->cfg, offsetof(struct config, backends)), 0);
    cr_assert_str_eq(copy->path, l->cfg.path);

    /* the original goes; the copy stands alone */
    done(l);
    cr_assert_eq(copy->n_backends, 9);
    cr_assert_str_eq(copy->backends[8].name, "b8");
    cr_assert_eq(copy->backends[8].port, 2008);
    cr_assert_str_eq(copy->tenants[6].name, "t6");
    cr_assert_eq(copy->tenants[6].key_sha256[31], 6);
    cr_assert_not_null(config_backend_find(copy, "b3"));

    struct config second;
    cr_assert_eq(config_copy(&second, copy), 0);
    config_free(copy);
    cr_assert_null(copy->backends);
    cr_assert_null(copy->tenants);
    cr_assert_eq(copy->n_backends, 0);
    cr_assert_eq(copy->n_tenants, 0);
    cr_assert_str_eq(second.backends[0].name, "b0");
    config_free(&second);
    free(copy);
}

Test(config_memory, copy_of_defaults_and_of_nothing)
{
    struct config a, b, empty, c;
    cr_assert_eq(config_defaults(&a), 0);
    cr_assert_eq(config_copy(&b, &a), 0);
    config_free(&a);
    expect_default_values(&b);
    config_free(&b);

    memset(&empty, 0, sizeof empty);
    cr_assert_eq(config_copy(&c, &empty), 0);
    cr_assert_null(c.backends);
    cr_assert_null(c.tenants);
    config_free(&c);
}

Test(config_memory, failed_load_releases)
{
    struct loaded *l = load("[backend a]\nurl = http://127.0.0.1\n[tenant t]\n[backend b]\n"
                            "url = https://x\n");
    cr_assert_eq(l->rc, -EINVAL);
    cr_assert_null(l->cfg.backends);
    cr_assert_null(l->cfg.tenants);
    cr_assert_eq(l->cfg.n_backends, 0);
    done(l);
}

Test(config_governor, defaults_and_values)
{
    struct loaded *l = load("");
    expect_ok(l);
    const struct config *c = &l->cfg;
    cr_assert_eq(c->gov_algorithm, CONFIG_GOV_GRADIENT);
    cr_assert_eq(c->target_ttft_ms, 550);
    cr_assert_eq(c->min_concurrent, 16);
    cr_assert_eq(c->max_concurrent, 80);
    cr_assert_eq(c->sample_interval_ms, 200);
    cr_assert_float_eq(c->gov_kp, 0.35, 1e-12);
    cr_assert_float_eq(c->gov_ki, 0.08, 1e-12);
    cr_assert_float_eq(c->gov_kd, 0.15, 1e-12);
    cr_assert_float_eq(c->gov_integral_saturation, 200.0, 1e-12);
    cr_assert_eq(c->queue_ttl_ms, 800);
    cr_assert_eq(c->queue_max, 1024);
    done(l);

    l = load("[governor]\nalgorithm = pid\nkp = 1.5\nki = 0\nkd = .25\nmin_concurrent = 2\n"
             "max_concurrent = 2\nqueue_max = 0\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.gov_algorithm, CONFIG_GOV_PID);
    cr_assert_float_eq(l->cfg.gov_kp, 1.5, 1e-12);
    cr_assert_float_eq(l->cfg.gov_ki, 0.0, 1e-12);
    cr_assert_float_eq(l->cfg.gov_kd, 0.25, 1e-12);
    cr_assert_eq(l->cfg.min_concurrent, 2);
    cr_assert_eq(l->cfg.queue_max, 0);
    done(l);
}

Test(config_governor, bad_values)
{
    static const struct case_ cases[] = {
        {"[governor]\nalgorithm = vegas\n",
         ":2: [governor] algorithm 'vegas' is not supported (supported: pid, gradient)"},
        {"[governor]\nkp = -1\n", ":2: [governor] kp '-1' is not a non-negative decimal number"},
        {"[governor]\nkp = nan\n", ":2: [governor] kp 'nan' is not a non-negative decimal number"},
        {"[governor]\nkp = 0x10\n",
         ":2: [governor] kp '0x10' is not a non-negative decimal number"},
        {"[governor]\nkd = 1.5x\n",
         ":2: [governor] kd '1.5x' is not a non-negative decimal number"},
        {"[governor]\nki = 1001\n", ":2: [governor] ki '1001' must be between 0 and 1000"},
        {"[governor]\ntarget_ttft_ms = 0\n",
         ":2: [governor] target_ttft_ms '0' must be between 1 and 600000"},
        {"[governor]\nsample_interval_ms = 5\n",
         ":2: [governor] sample_interval_ms '5' must be between 10 and 60000"},
        {"[governor]\nmin_concurrent = 50\nmax_concurrent = 40\n",
         ":2: [governor] min_concurrent (50) must be at most max_concurrent (40)"},
        {"[governor]\nmin_concurrent = 100\n",
         ":2: [governor] min_concurrent (100) must be at most max_concurrent (80)"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_tenants, limits_and_budgets)
{
    struct loaded *l = load("[tenant acme]\nhard_limit = 20\nburst_limit = 32\ndecay_ms = 5000\n"
                            "tokens_per_minute = 600000\ndefault_max_tokens = 256\n"
                            "[tenant other]\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.n_tenants, 2);
    const struct config_tenant *t = &l->cfg.tenants[0];
    cr_assert_eq(t->hard_limit, 20);
    cr_assert_eq(t->burst_limit, 32);
    cr_assert_eq(t->decay_ms, 5000);
    cr_assert_eq(t->tokens_per_minute, 600000);
    cr_assert_eq(t->default_max_tokens, 256);
    t = &l->cfg.tenants[1];
    cr_assert_eq(t->hard_limit, 0);
    cr_assert_eq(t->burst_limit, 0);
    cr_assert_eq(t->decay_ms, 60000);
    cr_assert_eq(t->tokens_per_minute, 0);
    cr_assert_eq(t->default_max_tokens, 1024);
    done(l);

    static const struct case_ cases[] = {
        {"[tenant a]\nhard_limit = 10\nburst_limit = 5\n",
         ":1: [tenant a] burst_limit (5) must be at least hard_limit (10)"},
        {"[tenant a]\nburst_limit = 5\n", ":1: [tenant a] burst_limit needs a hard_limit"},
        {"[tenant a]\ndecay_ms = 0\n",
         ":2: [tenant a] decay_ms '0' must be between 1 and 86400000"},
        {"[tenant a]\ndefault_max_tokens = 0\n",
         ":2: [tenant a] default_max_tokens '0' must be between 1 and 10000000"},
        {"[tenant a]\ntokens_per_minute = lots\n",
         ":2: [tenant a] tokens_per_minute 'lots' is not a whole number"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_governor, defaults_match_the_governor_module)
{
    struct config c;
    cr_assert_eq(config_defaults(&c), 0);
    struct gov_params p;
    gov_params_default(&p);
    cr_assert_eq((int)p.algo, c.gov_algorithm);
    cr_assert_float_eq(p.target_ttft_ms, (double)c.target_ttft_ms, 1e-9);
    cr_assert_eq(p.min_limit, c.min_concurrent);
    cr_assert_eq(p.max_limit, c.max_concurrent);
    cr_assert_eq(p.sample_interval_ms, c.sample_interval_ms);
    cr_assert_float_eq(p.kp, c.gov_kp, 1e-12);
    cr_assert_float_eq(p.ki, c.gov_ki, 1e-12);
    cr_assert_float_eq(p.kd, c.gov_kd, 1e-12);
    cr_assert_float_eq(p.integral_saturation, c.gov_integral_saturation, 1e-12);
    config_free(&c);
}

Test(config_slo, policies_parse)
{
    struct loaded *l = load("[tenant acme]\n"
                            "[qos]\nevaluate_interval = 5s\nwebhook = http://127.0.0.1:9/hook/a\n"
                            "[slo fast]\nmetric = ttft_p95\nthreshold = 800\nwindow = 2m\n"
                            "severity = critical\n"
                            "actions = lower_limit 25%, throttle_tenant cooldown 1m, "
                            "disable_feature stream_resume, protocol_fallback, shed_load 10, "
                            "alert, safe_mode\n"
                            "[slo errs]\ntenant = acme\nmetric = error_rate\nthreshold = 0.01\n");
    expect_ok(l);
    const struct config *c = &l->cfg;
    cr_assert_eq(c->qos_interval_ms, 5000);
    cr_assert_str_eq(c->qos_webhook.host, "127.0.0.1");
    cr_assert_eq(c->qos_webhook.port, 9);
    cr_assert_str_eq(c->qos_webhook_path, "/hook/a");
    cr_assert_eq(c->n_slos, 2);
    const struct config_slo *f = &c->slos[0];
    cr_assert_eq(f->metric, SLO_TTFT_P95);
    cr_assert_float_eq(f->threshold, 800, 1e-9);
    cr_assert_eq(f->window_ms, 120000);
    cr_assert_eq(f->severity, SLO_CRITICAL);
    cr_assert_eq(f->n_actions, 7);
    cr_assert_eq(f->actions[0].kind, ACT_LOWER_LIMIT);
    cr_assert_eq(f->actions[0].pct, 25);
    cr_assert_eq(f->actions[1].kind, ACT_THROTTLE_TENANT);
    cr_assert_eq(f->actions[1].cooldown_ms, 60000);
    cr_assert_eq(f->actions[2].kind, ACT_DISABLE_FEATURE);
    cr_assert_eq(f->actions[2].feature, FEAT_STREAM_RESUME);
    cr_assert_eq(f->actions[4].pct, 10);
    cr_assert_eq(f->actions[6].kind, ACT_SAFE_MODE);
    cr_assert_eq(f->cooldown_ms, 30000); /* the default */
    const struct config_slo *e = &c->slos[1];
    cr_assert_str_eq(e->tenant, "acme");
    cr_assert_eq(e->n_actions, 1); /* default: alert */
    cr_assert_eq(e->actions[0].kind, ACT_ALERT);
    done(l);
}

Test(config_slo, errors_have_their_lines)
{
    static const struct case_ cases[] = {
        {"[slo a]\nmetric = ttft_p95\n", ":1: [slo a] has no threshold"},
        {"[slo a]\nthreshold = 1\n", ":1: [slo a] has no metric"},
        {"[slo a]\nmetric = latency\nthreshold = 1\n",
         ":2: [slo a] metric 'latency' is not supported (supported: ttft_p50, ttft_p95, ttft_p99, "
         "itl_p99, error_rate, reject_rate, disconnect_rate, slow_consumer_rate, queue_depth)"},
        {"[slo a]\nmetric = error_rate\nthreshold = 5\n",
         ":3: [slo a] threshold 5 is a rate: at most 1 (0.01 = 1 %)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = lower_limit\n",
         ":4: [slo a] actions 'lower_limit' has lower_limit without a percentage 1..99 (e.g. "
         "'lower_limit 25')"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = alert, reboot\n",
         ":4: [slo a] actions 'alert, reboot' has an unknown action 'reboot' (expected "
         "lower_limit, throttle_tenant, disable_feature, protocol_fallback, shed_load, alert or "
         "safe_mode)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = disable_feature warp\n",
         ":4: [slo a] actions 'disable_feature warp' has disable_feature without a feature "
         "(adaptive_governor, http2_transport, ttft_pipeline, qos_monitoring, stream_resume)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = alert cooldown soon\n",
         ":4: [slo a] actions 'alert cooldown soon' has alert cooldown 'soon', which is not a "
         "duration (expected e.g. 250ms, 10s, 5m, 1h)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = alert,\n",
         ":4: [slo a] actions 'alert,' has an empty action"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = safe_mode 5\n",
         ":4: [slo a] actions 'safe_mode 5' has safe_mode with an argument '5' it does not take"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\ntenant = ghost\n",
         ":1: [slo a] tenant 'ghost' is not a [tenant NAME] (or * or default)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nbackend = ghost\n",
         ":1: [slo a] backend 'ghost' is not a [backend NAME]"},
        {"[slo a]\nmetric = itl_p99\nthreshold = 1\ntenant = *\n",
         ":2: [slo a] itl_p99 is measured for the whole node only (no tenant, no backend)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\n[slo a]\n",
         ":4: section [slo a] given twice (first at line 1)"},
        {"[qos]\nwebhook = ftp://x/\n",
         ":2: [qos] webhook 'ftp://x/' has scheme 'ftp', which is not supported (only http://)"},
        {"[slo ok]\nmetric = queue_depth\nthreshold = 50\nactions = shed_load 20 cooldown 5s\n",
         NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}
