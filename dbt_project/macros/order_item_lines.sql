{#- The `source` and `lines` CTEs every stg_<source>__order_items model starts with: the raw
    order rows (plus raw_xid) and one row per element of the order's item array, numbered from 1
    in payload order. `items_expr` is the JSON array (or single object) of lines, written against
    `source.payload`. Use as `with {{ order_item_lines(...) }}, renamed as (...)`; each line is
    the jsonb `line`. -#}
{% macro order_item_lines(source_table, items_expr) -%}
source as (
    select *, xmin::text::bigint as raw_xid from {{ source('raw', source_table) }}
),

lines as (
    select
        source.channel,
        source.platform_order_no,
        source.loaded_at,
        source.raw_xid,
        line.value as line,
        line.ordinality as line_no
    from source
    cross join lateral jsonb_array_elements(
        {{ as_json_array(items_expr) }}
    ) with ordinality as line (value, ordinality)
)
{%- endmacro %}
