{#- pre-hook of the models whose incremental build probes a few orders through the order-key
    indexes of the facts it joins: a full build (the first, or --full-refresh) reads every row
    of them, which sequential reads with sorts and hashes do faster than the merge joins over
    index scans the planner picks for the index order (random heap reads of tables written
    just before, no visibility map yet). At 1,000,000 orders, the selects alone:
    order_holographic 43.6-45.5 s with index scans against 30.2 s without, fct_order_items
    13.4-15.1 s against 8.5 s. `set local`: this model's transaction only. -#}
{% macro sequential_reads_in_full_build() -%}
    {%- if not is_incremental() -%}
    set local enable_indexscan = off
    {%- endif -%}
{%- endmacro %}
