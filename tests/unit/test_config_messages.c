/* Values written in config files and the one error message each bad value
 * gives, with its line: addresses, sizes, durations, booleans, names.  The
 * loader's common paths are in test_config.c. */
#include "shared/config.h"
#include "tests/unit/config_fixture.h"

Test(config_values, address_messages)
{
    static const struct case_ cases[] = {
        {"[server]\nlisten = 1.2.3.4\n",
         ":2: [server] listen '1.2.3.4' has no port (expected IPv4:PORT, [IPv6]:PORT, *:PORT or "
         "HOST:PORT)"},
        {"[server]\nlisten = 1.2.3.4:99999\n",
         ":2: [server] listen '1.2.3.4:99999' has a bad port '99999' (expected 0..65535)"},
        {"[server]\nlisten = ::1:80\n",
         ":2: [server] listen '::1:80' needs brackets around an IPv6 address, e.g. [::1]:8080"},
        {"[server]\nlisten = :80\n",
         ":2: [server] listen ':80' has no host (write *:PORT for every address)"},
        {"[server]\nlisten = 1.2.3:80\n",
         ":2: [server] listen '1.2.3:80' has a bad IPv4 address '1.2.3'"},
        {"[server]\nlisten = [zz]:80\n",
         ":2: [server] listen '[zz]:80' has a bad IPv6 address '[zz]'"},
        {"[server]\nlisten = [::1:80\n",
         ":2: [server] listen '[::1:80' has no ']' after the IPv6 address"},
        {"[server]\nlisten = [::1]x80\n",
         ":2: [server] listen '[::1]x80' has unexpected text after ']'"},
        {"[server]\nadmin_listen = bad_name!:80\n",
         ":2: [server] admin_listen 'bad_name!:80' has a bad host name 'bad_name!'"},
        {"[server]\nlisten = [::]:8080\ntls_listen = *:0\nadmin_listen = localhost:9091\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    struct loaded *l = load("[server]\nlisten = no-such-host.invalid:80\n");
    cr_assert_eq(l->rc, -EINVAL);
    cr_assert_eq(l->errs.n, 1);
    char want[200];
    snprintf(want, sizeof want,
             "%s:2: [server] listen 'no-such-host.invalid:80' has a host 'no-such-host.invalid' "
             "that cannot be resolved (",
             l->path);
    cr_assert(strncmp(l->errs.msg[0], want, strlen(want)) == 0, "%s", l->errs.msg[0]);
    done(l);
}

Test(config_values, addresses_land_in_the_config)
{
    struct loaded *l =
        load("[server]\nlisten = [::1]:8081\ntls_listen = *:8444\nadmin_listen = 127.0.0.2:0\n");
    expect_ok(l);
    expect_ipv6(&l->cfg.listen, "::1", 8081);
    cr_assert_str_eq(l->cfg.listen.text, "[::1]:8081");
    expect_ipv4(&l->cfg.tls_listen, "0.0.0.0", 8444);
    expect_ipv4(&l->cfg.admin_listen, "127.0.0.2", 0);
    done(l);
}

Test(config_values, sizes_and_numbers)
{
    static const struct case_ cases[] = {
        {"[http]\nmax_body_size = 4x\n",
         ":2: [http] max_body_size '4x' is not a size (expected e.g. 4096, 16k, 16KiB, 4m, 4MiB, "
         "1g)"},
        {"[http]\nmax_body_size = 18446744073709551616\n",
         ":2: [http] max_body_size '18446744073709551616' is too large"},
        {"[http]\nmax_body_size = 17179869184g\n",
         ":2: [http] max_body_size '17179869184g' is too large"},
        {"[http]\nmax_body_size = 16g\n", NULL},
        {"[buffers]\nsend_zc_threshold = 4g\n",
         ":2: [buffers] send_zc_threshold '4g' is too large (at most 4294967295)"},
        {"[buffers]\nsend_zc_threshold = 4095m\n", NULL},
        {"[http]\nmax_headers = 1.5\n", ":2: [http] max_headers '1.5' is not a whole number"},
        {"[http]\nmax_headers = -1\n", ":2: [http] max_headers '-1' is not a whole number"},
        {"[http]\nmax_headers = 10k\n", ":2: [http] max_headers '10k' is not a whole number"},
        {"[http]\nmax_headers =\n", ":2: [http] max_headers '' is not a whole number"},
        {"[http]\nkeepalive_requests = 4294967296\n",
         ":2: [http] keepalive_requests '4294967296' is too large (at most 4294967295)"},
        {"[http]\nkeepalive_requests = 99999999999999999999999\n",
         ":2: [http] keepalive_requests '99999999999999999999999' is too large (at most "
         "4294967295)"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_values, durations_booleans_and_words)
{
    static const struct case_ cases[] = {
        {"[http]\nheader_timeout = 0\n", ":2: [http] header_timeout '0' must be greater than 0"},
        {"[http]\nbody_timeout = 0ms\n", ":2: [http] body_timeout '0ms' must be greater than 0"},
        {"[http]\nkeepalive_timeout = 10 s\n",
         ":2: [http] keepalive_timeout '10 s' is not a duration (expected e.g. 250ms, 10s, 5m, "
         "1h)"},
        {"[server]\ndrain_timeout = 50d\n",
         ":2: [server] drain_timeout '50d' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)"},
        {"[upstream]\nconnect_timeout = 1194h\n",
         ":2: [upstream] connect_timeout '1194h' is too long (at most 4294967295ms, about 49 "
         "days)"},
        {"[auth]\nenabled = maybe\n",
         ":2: [auth] enabled 'maybe' is not a boolean (expected true/false, yes/no, on/off or "
         "1/0)"},
        {"[server]\nworkers = 0\n",
         ":2: [server] workers '0' is not valid (expected auto or 1..256)"},
        {"[server]\nworkers = 257\n",
         ":2: [server] workers '257' is not valid (expected auto or 1..256)"},
        {"[server]\nworkers = Auto\n",
         ":2: [server] workers 'Auto' is not valid (expected auto or 1..256)"},
        {"[server]\nlog_level = loud\n",
         ":2: [server] log_level 'loud' is not a log level (expected error, warn, info or debug)"},
        {"[server]\nlog_level = INFO\n",
         ":2: [server] log_level 'INFO' is not a log level (expected error, warn, info or debug)"},
        {"[server]\nstate_dir =\n", ":2: [server] state_dir '' must not be empty"},
        {"[server]\ncontrol_socket =\n", ":2: [server] control_socket '' must not be empty"},
        /* 12 + 96 = 108 characters: one more than sun_path holds */
        {"[server]\ncontrol_socket = /run/sluice/" A16 A16 A16 A16 A16 A16 "\n",
         ":2: [server] control_socket '/run/sluice/" A16 A16 A16 A16 A16 A16
         "' is too long (at most 107 bytes)"},
        {"[server]\ncontrol_socket = /run/sluice/" A16 A16 A16 A16 A16 "aaaaaaaaaaaaaaa\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_values, values_land_in_the_config)
{
    struct loaded *l = load("[server]\n"
                            "workers = 12\n"
                            "drain_timeout = 250ms\n"
                            "max_connections = 1048576\n"
                            "log_level = debug\n"
                            "tls_listen = 127.0.0.1:8443\n"
                            "state_dir = /srv/sluice state\n"
                            "control_socket = /tmp/sluice.sock\n"
                            "[http]\n"
                            "max_request_line = 1m\n"
                            "max_header_bytes = 1MiB\n"
                            "max_headers = 256\n"
                            "max_body_size = 1GiB\n"
                            "header_timeout = 1h\n"
                            "body_timeout = 5m\n"
                            "keepalive_timeout = 3\n"
                            "keepalive_requests = 1\n"
                            "[upstream]\n"
                            "connect_timeout = 100ms\n"
                            "keepalive = 0\n"
                            "idle_timeout = 2m\n"
                            "[stream]\n"
                            "first_token_timeout = 2m\n"
                            "token_idle_timeout = 15s\n"
                            "stream_buffer_max = 64m\n"
                            "slow_consumer_timeout = 1s\n"
                            "max_event_size = 64m\n"
                            "[buffers]\n"
                            "slab_size = 1m\n"
                            "slabs = 16\n"
                            "recv_buffer_size = 512\n"
                            "recv_buffers = 32768\n"
                            "send_zc_threshold = 64k\n"
                            "[auth]\n"
                            "enabled = off\n");
    expect_ok(l);
    const struct config *c = &l->cfg;
    cr_assert_eq(c->workers, 12);
    cr_assert_eq(config_worker_count(c), 12);
    cr_assert_eq(c->drain_timeout_ms, 250);
    cr_assert_eq(c->max_connections, 1048576);
    cr_assert_eq(c->log_level, 3);
    expect_ipv4(&c->tls_listen, "127.0.0.1", 8443);
    cr_assert_str_eq(c->state_dir, "/srv/sluice state");
    cr_assert_str_eq(c->control_socket, "/tmp/sluice.sock");
    cr_assert_eq(c->max_request_line, 1u << 20);
    cr_assert_eq(c->max_header_bytes, 1u << 20);
    cr_assert_eq(c->max_headers, 256);
    cr_assert_eq(c->max_body_size, 1ull << 30);
    cr_assert_eq(c->header_timeout_ms, 3600000);
    cr_assert_eq(c->body_timeout_ms, 300000);
    cr_assert_eq(c->keepalive_timeout_ms, 3000);
    cr_assert_eq(c->keepalive_requests, 1);
    cr_assert_eq(c->connect_timeout_ms, 100);
    cr_assert_eq(c->upstream_keepalive, 0);
    cr_assert_eq(c->upstream_idle_timeout_ms, 120000);
    cr_assert_eq(c->first_token_timeout_ms, 120000);
    cr_assert_eq(c->token_idle_timeout_ms, 15000);
    cr_assert_eq(c->stream_buffer_max, 64ull << 20);
    cr_assert_eq(c->slow_consumer_timeout_ms, 1000);
    cr_assert_eq(c->max_event_size, 64u << 20);
    cr_assert_eq(c->slab_size, 1u << 20);
    cr_assert_eq(c->slabs, 16);
    cr_assert_eq(c->recv_buffer_size, 512);
    cr_assert_eq(c->recv_buffers, 32768);
    cr_assert_eq(c->send_zc_threshold, 65536);
    cr_assert_eq(c->auth_enabled, false);
    done(l);
}

Test(config_values, log_levels)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "[server]\nlog_level = %s\n", names[i]);
        struct loaded *l = load(text);
        expect_ok(l);
        cr_assert_eq(l->cfg.log_level, i);
        done(l);
    }
}

Test(config_values, per_key_ranges)
{
    static const struct case_ cases[] = {
        {"[http]\nmax_headers = 0\n", ":2: [http] max_headers '0' must be between 1 and 256"},
        {"[http]\nmax_headers = 1\n", NULL},
        {"[http]\nmax_headers = 256\n", NULL},
        {"[http]\nmax_headers = 257\n", ":2: [http] max_headers '257' must be between 1 and 256"},
        {"[http]\nmax_request_line = 255\n",
         ":2: [http] max_request_line '255' must be between 256 and 1MiB"},
        {"[http]\nmax_request_line = 256\n", NULL},
        {"[http]\nmax_request_line = 1025k\n",
         ":2: [http] max_request_line '1025k' must be between 256 and 1MiB"},
        {"[http]\nmax_header_bytes = 2m\n",
         ":2: [http] max_header_bytes '2m' must be between 256 and 1MiB"},
        {"[http]\nmax_header_bytes = 8k\n", NULL},
        {"[http]\nkeepalive_requests = 0\n",
         ":2: [http] keepalive_requests '0' must be greater than 0"},
        {"[server]\nmax_connections = 0\n",
         ":2: [server] max_connections '0' must be between 1 and 1048576"},
        {"[server]\nmax_connections = 1048577\n",
         ":2: [server] max_connections '1048577' must be between 1 and 1048576"},
        {"[server]\nmax_connections = 1\n", NULL},
        {"[server]\nbatch_wait_us = 10001\n",
         ":2: [server] batch_wait_us '10001' must be between 0 and 10000"},
        {"[server]\nbatch_wait_us = 250us\n",
         ":2: [server] batch_wait_us '250us' is not a whole number"},
        {"[server]\nbatch_wait_us = 10000\n", NULL},
        {"[buffers]\nslab_size = 2k\n",
         ":2: [buffers] slab_size '2k' must be a power of two between 4KiB and 1MiB"},
        {"[buffers]\nslab_size = 12k\n",
         ":2: [buffers] slab_size '12k' must be a power of two between 4KiB and 1MiB"},
        {"[buffers]\nslab_size = 2m\n",
         ":2: [buffers] slab_size '2m' must be a power of two between 4KiB and 1MiB"},
        {"[buffers]\nslab_size = 4k\n", NULL},
        {"[buffers]\nslab_size = 64k\n", NULL},
        {"[buffers]\nslabs = 15\n", ":2: [buffers] slabs '15' must be between 16 and 1048576"},
        {"[buffers]\nslabs = 1048577\n",
         ":2: [buffers] slabs '1048577' must be between 16 and 1048576"},
        {"[buffers]\nslabs = 1000\n", NULL},
        {"[buffers]\nrecv_buffer_size = 256\n",
         ":2: [buffers] recv_buffer_size '256' must be a power of two between 512 and 64KiB"},
        {"[buffers]\nrecv_buffer_size = 3000\n",
         ":2: [buffers] recv_buffer_size '3000' must be a power of two between 512 and 64KiB"},
        {"[buffers]\nrecv_buffer_size = 128k\n",
         ":2: [buffers] recv_buffer_size '128k' must be a power of two between 512 and 64KiB"},
        {"[buffers]\nrecv_buffer_size = 64k\n", NULL},
        {"[buffers]\nrecv_buffers = 8\n",
         ":2: [buffers] recv_buffers '8' must be a power of two between 16 and 32768"},
        {"[buffers]\nrecv_buffers = 100\n",
         ":2: [buffers] recv_buffers '100' must be a power of two between 16 and 32768"},
        {"[buffers]\nrecv_buffers = 65536\n",
         ":2: [buffers] recv_buffers '65536' must be a power of two between 16 and 32768"},
        {"[buffers]\nrecv_buffers = 16\n", NULL},
        {"[stream]\nmax_event_size = 1023\n",
         ":2: [stream] max_event_size '1023' must be between 1KiB and 64MiB"},
        {"[stream]\nmax_event_size = 65m\n",
         ":2: [stream] max_event_size '65m' must be between 1KiB and 64MiB"},
        {"[stream]\nmax_event_size = 1k\n", NULL},
        {"[stream]\nstream_buffer_max = 16k\nmax_event_size = 16k\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_values, settings_that_depend_on_each_other)
{
    static const struct case_ cases[] = {
        {"[http]\nmax_header_bytes = 4k\n",
         ":2: [http] max_header_bytes (4096) must be at least max_request_line (8192)"},
        {"[http]\nmax_request_line = 64k\n",
         ":2: [http] max_header_bytes (32768) must be at least max_request_line (65536)"},
        {"[http]\nmax_header_bytes = 8k\nmax_request_line = 8k\n", NULL},
        {"[stream]\nstream_buffer_max = 8k\nmax_event_size = 8k\n",
         ":2: [stream] stream_buffer_max (8192) must be at least [buffers] slab_size (16384)"},
        {"[buffers]\nslab_size = 512k\n",
         ":2: [stream] stream_buffer_max (262144) must be at least [buffers] slab_size (524288)"},
        {"[stream]\nmax_event_size = 2m\n",
         ":2: [stream] max_event_size (2097152) must be at most stream_buffer_max (262144)"},
        {"[stream]\nmax_event_size = 256k\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    /* Both sides wrong at once: both reported, on the line that was set. */
    struct loaded *l = load("[stream]\nstream_buffer_max = 8k\n");
    EXPECT_ERRORS(l,
                  ":2: [stream] stream_buffer_max (8192) must be at least [buffers] slab_size "
                  "(16384)",
                  ":2: [stream] max_event_size (262144) must be at most stream_buffer_max (8192)");
    done(l);
}
