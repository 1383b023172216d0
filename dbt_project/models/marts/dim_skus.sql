{# One row per SKU: catalogue data, stock across warehouses and sales from the order lines.
   SKUs sold but missing from the catalogue still get a row. #}

with catalogue as (
    select distinct on (sku) *
    from {{ ref('stg_merchant_systems__skus') }}
    where sku is not null
    order by sku, loaded_at desc
),

stock as (
    select
        sku,
        sum(on_hand) as units_on_hand,
        sum(locked) as units_locked,
        sum(available) as units_available,
        count(*) filter (where available < coalesce(safety_stock, 0)) as warehouses_below_safety
    from {{ ref('stg_merchant_systems__wms_stock') }}
    group by 1
),

-- per channel first, so that every aggregate is a hash aggregate over few groups (no sort
-- of all order lines for count(distinct ...))
sales_by_channel as (
    select
        sku,
        channel,
        min(title) as sold_title,
        count(*) filter (where is_first_sku_line) as orders,
        sum(qty) as units_sold,
        sum(line_paid_amount) as paid_amount,
        min(unit_price) as min_unit_price,
        max(unit_price) as max_unit_price
    from {{ ref('fct_order_items') }}
    where sku is not null
    group by 1, 2
),

sales as (
    select
        sku,
        min(sold_title) as sold_title,
        sum(orders)::bigint as orders,
        sum(units_sold)::bigint as units_sold,
        sum(paid_amount) as paid_amount,
        min(min_unit_price) as min_unit_price,
        max(max_unit_price) as max_unit_price,
        count(*) as channels
    from sales_by_channel
    group by 1
),

all_skus as (
    select sku from catalogue
    union
    select sku from sales
),

final as (
    select
        ---------- ids
        all_skus.sku,
        {{ spreadsheet_safe('coalesce(catalogue.title, sales.sold_title)') }} as title,
        catalogue.category,
        catalogue.barcode,
        catalogue.hs_code,

        ---------- catalogue
        catalogue.list_price,
        catalogue.weight_kg,
        coalesce(catalogue.is_hot, false) as is_hot,
        catalogue.sku is not null as is_in_catalogue,

        ---------- stock
        coalesce(stock.units_on_hand, 0) as units_on_hand,
        coalesce(stock.units_locked, 0) as units_locked,
        coalesce(stock.units_available, 0) as units_available,
        coalesce(stock.warehouses_below_safety, 0) as warehouses_below_safety,

        ---------- sales
        coalesce(sales.orders, 0) as orders,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.paid_amount, 0) as paid_amount,
        sales.min_unit_price,
        sales.max_unit_price,
        coalesce(sales.channels, 0) as channels
    from all_skus
    left join catalogue using (sku)
    left join stock using (sku)
    left join sales using (sku)
)

select * from final
