"""Notification templates written to exhaust the machine that renders them, by name: `golive plan check` must
refuse each (tests/security/test_hostile_plans.py) and the notifier must cut each off when one reaches it from the
bus unchecked (tests/notifier/test_template_limits.py)."""

TEMPLATE_BOMBS = {
    "nested_range": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "string_times_a_billion": "{{ 'x' * 1000000000 }}",
    "list_times_a_lot": "{{ (range(100000) | list) * 100000 }}",
    "power_tower": "{{ 9 ** 9999999999 }}",
    "indent_filter": "{{ ('\\n' * 100000) | indent(100000) }}",
    "many_widths": "{{ ('%99999d' * 1000) % ((1,) * 1000) }}",
    "doubling": "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
                "{{ ns.s | length }}",
    "center_filter": "{{ 'x' | center(1000000000) }}",
    "ljust_method": "{{ 'x'.ljust(1000000000) }}",
    "format_width": "{{ '{:>1000000000}'.format(1) }}",
    "percent_width": "{{ '%1000000000d' % 1 }}",
    "lipsum": "{{ lipsum(100000, false, 1000, 1001) }}",
    "recursive_loop": "{% for x in [1] recursive %}{{ loop([1, 1]) }}{% endfor %}",
    "recursive_macro": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "huge_output": "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
}
