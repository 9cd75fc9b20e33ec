"""The configuration file is TOML: every type of value herald's settings take, strings with
escapes and commas, and errors that name the file, the line and the key."""
import json
import textwrap
import urllib.request

import pytest

from herald_process import Herald, free_port, run

KEY = 'k"ey,1\\zA'


def get(herald, path, key):
    request = urllib.request.Request(herald.url + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_every_type_of_value_is_read(tmp_path):
    port = free_port()
    config = tmp_path / "herald.toml"
    config.write_text(textwrap.dedent(f"""\
        # herald, configured by file: one key of each TOML type herald's settings take
        port = {port}                              # an integer
        auth = "none"                              # a string
        "api-key" = "k\\"ey,1\\\\z\\u0041"               # escapes and a comma, in a quoted key
        namespaces = [ "/", '/a,b',                # an array over lines, a literal string
                       "/orders" ]
        allow-credentials = false                  # a boolean
        allowed-origins = ["https://app.example"]
        recovery = true
        recovery-window = 30
        queue-path = "{tmp_path / 'queue.sqlite'}"
    """))
    herald = Herald("--config", str(config), port=port, port_flag=False)
    try:
        stats = get(herald, "/api/stats", KEY)
        assert set(stats["namespaces"]) == {"/", "/a,b", "/orders"}
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(herald, "/api/stats", 'k"ey,1')
        assert refused.value.code == 401
    finally:
        herald.stop()


@pytest.mark.parametrize("text, message", [
    ('port = 8080\nhost = "127.0.0.1\n',
     "config {path}:2: Error while parsing string: unescaped control characters other than TAB (U+0009) are explicitly prohibited"),
    ('port = 8080\n\nnamespace = ["/"]\n',
     "config {path}:3: unknown key 'namespace' (known: "),
    ('auth = "none"\nport = "8080"\n',
     'config {path}:2: port = "8080" is a string; port takes an integer'),
    ('auth = "none"\nnamespaces = "/"\n',
     'config {path}:2: namespaces = "/" is a string; namespaces takes an array of strings'),
    ('auth = "none"\nnamespaces = ["/", 2]\n',
     "config {path}:2: namespaces = [ '/', 2 ] is an array holding more than strings; namespaces takes an array of strings"),
    ('auth = "none"\nrecovery = "yes"\n',
     'config {path}:2: recovery = "yes" is a string; recovery takes a boolean'),
    ('auth = "none"\npollers = 2.5\n',
     "config {path}:2: pollers = 2.5 is a float; pollers takes an integer"),
    ('auth = "none"\n\n[server]\nport = 1\n',
     "config {path}:0: unknown key 'server' (known: "),
    ('auth = "none"\n# the port\n  pollers   = 70\n',
     "herald: pollers (from {path}:3): '70' is not a whole number in 1...64"),
    ('auth = "none"\nport = 1\nport = 2\n',
     "config {path}:3: Error while parsing key-value pair: cannot redefine existing integer 'port'"),
])
def test_errors_name_the_file_the_line_and_the_key(tmp_path, text, message):
    config = tmp_path / "herald.toml"
    config.write_text(text)
    status, _, err = run("serve", "--config", str(config), cwd=tmp_path)
    assert status == 2
    expected = message.format(path=config)
    if not expected.startswith("herald: "):
        expected = "herald: " + expected
    assert err.strip().startswith(expected), err
