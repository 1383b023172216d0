{{
    config(
        materialized='incremental',
        unique_key=['channel', 'platform_order_no'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['channel', 'platform_order_no', 'line_no'], 'unique': True},
            {'columns': ['sku']},
        ] + build_indexes(),
        pre_hook="{{ sequential_reads_in_full_build() }}",
    )
}}

{# One row per order line. Incremental by order: every line of a changed order is replaced
   (delete+insert on the order key), so a line the platform removed disappears too. Only lines
   whose order is in fct_orders, so no line is ever without its order: declarative automation
   may build this model in a run that does not rebuild fct_orders (it waits on the decisions).
   Lines skipped so come back with their order: the orders fct_orders wrote since this model's
   last build are read again beside the orders whose stored lines changed. The order's amounts
   come from int_orders, built in the same op as int_order_items. #}

{%- if is_incremental() %}
{%- set changed_orders -%}
    {{ changed_rows(ref('int_order_items')) }}
    union
    {{ changed_rows(ref('fct_orders')) }}
{%- endset %}
{%- endif %}

with
{%- if is_incremental() %}
changed as (
    {{ changed_orders }}
),
{%- endif %}

items as (
    select
        channel,
        platform_order_no,
        line_no,
        platform_line_id,
        sku,
        title,
        qty,
        unit_price,
        line_goods_value,
        line_discount,
        line_paid_amount,
        refund_status,
        loaded_at
    {%- if is_incremental() %}
    from (
        {{ rows_of_changed_orders(
            ref('int_order_items'), 'select channel, platform_order_no from changed',
            count_keys=changed_orders
        ) | indent(8) }}
    ) as changed_lines
    {%- else %}
    from {{ ref('int_order_items') }}
    {%- endif %}
),

orders as (
    select parsed.channel, parsed.platform_order_no, parsed.goods_value, parsed.discount_amount
    from {{ ref('int_orders') }} as parsed
    where exists (
        select 1
        from {{ ref('fct_orders') }} as orders
        where orders.channel = parsed.channel
            and orders.platform_order_no = parsed.platform_order_no
    )
    {% if is_incremental() %}
        and (parsed.channel, parsed.platform_order_no) in (
            select channel, platform_order_no from items
        )
    {% endif %}
),

-- lines without their own discount take the order's discount pro rata by line value; the
-- last line takes the rounding rest, so the lines add up to the order to the cent
shares as (
    select
        items.*,
        orders.discount_amount as order_discount,
        round(
            coalesce(orders.discount_amount, 0) * items.line_goods_value
            / nullif(orders.goods_value, 0),
            2
        ) as pro_rata_discount,
        row_number() over (
            partition by items.channel, items.platform_order_no order by items.line_no desc
        ) = 1 as is_last_line,
        row_number() over (
            partition by items.channel, items.platform_order_no, items.sku order by items.line_no
        ) = 1 as is_first_sku_line
    from items
    inner join orders using (channel, platform_order_no)
),

allocated as (
    select
        *,
        coalesce(
            line_discount,
            case
                when is_last_line then coalesce(order_discount, 0) - coalesce(sum(pro_rata_discount)
                    over (partition by channel, platform_order_no) - pro_rata_discount, 0)
                else pro_rata_discount
            end
        ) as allocated_discount
    from shares
),

final as (
    select
        ---------- ids
        channel,
        platform_order_no,
        line_no,
        platform_line_id,
        sku,
        -- the channel's own SKU id stays in staging: JD's are 11-digit numbers that look like
        -- mobile numbers to any PII scan of the marts
        {{ spreadsheet_safe('title') }} as title,

        ---------- quantities and amounts (numeric yuan)
        qty,
        unit_price,
        line_goods_value,
        allocated_discount as line_discount,
        coalesce(line_paid_amount, line_goods_value - coalesce(allocated_discount, 0))
            as line_paid_amount,

        ---------- status
        refund_status,
        -- lets per-SKU order counts be a plain sum instead of a count(distinct order)
        is_first_sku_line,

        ---------- build bookkeeping
        loaded_at,
        {{ build_columns() }}
    from allocated
)

select * from final
