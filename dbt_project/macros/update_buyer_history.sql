{#- post-hook of order_holographic: a buyer's new or changed order changes the buyer history
    every one of their orders shows. The build recomputes the orders whose own facts changed;
    the buyer's other orders get the history of the dim_buyers rows written since the last
    build here, in place (only where it differs). Recomputed whole, each of those orders cost
    its items, tracks, movements and statuses read again, ~6 random pages an order: about
    4,000 of the 14,000 orders of a 10,000-order cycle at 1,000,000 orders.
    (Hooks render after the pre-hook registered this build: the last build is
    `previous_built` here.) -#}
{% macro update_buyer_history() -%}
    {%- if is_incremental() -%}
    update {{ this }} as holographic
    set
        buyer_key = buyers.buyer_key,
        buyer_orders = buyers.orders,
        buyer_refund_orders = buyers.refund_orders,
        buyer_paid_amount = buyers.paid_amount,
        buyer_first_seen_at = buyers.first_seen_at,
        is_first_order = holographic.created_at = buyers.first_seen_at,
        _built_at = now(),
        _built_xid = {{ built_xid() }},
        _written_xid = {{ written_xid() }}
    from {{ ref('dim_buyers') }} as buyers
    inner join {{ ref('fct_orders') }} as orders
        on orders.channel = buyers.channel
        and orders.buyer_id = buyers.buyer_id
    where {{ unseen_by_last_build(
            column='buyers._written_xid', relation=this, which='previous_built') }}
        {#- an order written to fct_orders since the last build was rebuilt by this one, with
            the current history: not looked up (a random page of this table each, ~10,000 of
            the ~14,000 orders of a 10,000-order cycle's buyers at 1,000,000 orders) -#}
        and not ({{ unseen_by_last_build(
            column='orders._written_xid', relation=this, which='previous_built') }})
        and holographic.channel = orders.channel
        and holographic.platform_order_no = orders.platform_order_no
        and holographic._written_xid <> {{ written_xid() }}
        and (holographic.buyer_key, holographic.buyer_orders, holographic.buyer_refund_orders,
             holographic.buyer_paid_amount, holographic.buyer_first_seen_at,
             holographic.is_first_order)
            is distinct from
            (buyers.buyer_key, buyers.orders, buyers.refund_orders, buyers.paid_amount,
             buyers.first_seen_at, holographic.created_at = buyers.first_seen_at)
    {%- endif -%}
{%- endmacro %}
