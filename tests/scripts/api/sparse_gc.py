# --log-gc's collections under --log-sparse.
import gc

import vztrace


@vztrace.sparse
def handle():
    gc.collect()


handle()
gc.collect()
