{#- One row per order with OrderPulse's latest decisions about it (all left-joinable). -#}

{{ order_decisions() }}
