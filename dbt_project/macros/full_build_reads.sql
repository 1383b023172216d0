{#- pre-hook of the models whose incremental build probes a few orders or buyers through the
    key indexes of the facts it joins: a full build (the first, or --full-refresh) reads every
    row of them, which sequential reads with sorts and hashes do faster than the merge joins
    over index scans the planner picks for the index order (random heap reads of tables
    written just before, no visibility map yet). Rebuilt alone on a fresh 1,000,000-order
    warehouse, one thread, twice each: order_holographic 49.7-50.2 -> 36.6-38.6 s,
    fct_order_items 15.9-16.4 -> 11.9-12.2 s, dim_buyers 9.8-11.2 -> 7.4-7.5 s. Measured and
    left without it (no gain, or slower): int_order_fulfillment_events, fct_orders,
    fct_order_status_history, order_health_checks. `set local`: this model's transaction
    only. -#}
{% macro sequential_reads_in_full_build() -%}
    {%- if not is_incremental() -%}
    set local enable_indexscan = off
    {%- endif -%}
{%- endmacro %}
