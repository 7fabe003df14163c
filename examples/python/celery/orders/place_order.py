#!/usr/bin/env python3
"""The shop side: `python place_order.py [COUNT]` places COUNT orders (4 by
default) and exits, whether or not the inventory worker runs."""
import sys

from tasks import reserve_stock

count = int(sys.argv[1]) if len(sys.argv) > 1 else 4
for i in range(1, count + 1):
    order = f"order-{i}: 1 x widget"
    reserve_stock.delay(order)
    print(f" [orders] placed {order}", flush=True)
