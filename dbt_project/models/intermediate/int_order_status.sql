{#- The current unified status of every order. The platform decides every status from
    payment on except `paid_pending_review`: while an order is paid and unshipped, OrderPulse's
    own decisions (risk, review, routing) and the warehouse and carrier events move it on. -#}

{{ order_status() }}
