; Every dependency token, in a 4-stage software pipeline over two scratchpad / accumulator halves:
;   load  push_next -> compute pop_prev   (load->compute: the operands are in)
;   compute push_prev -> load  pop_next   (compute->load: the half may be overwritten)
;   compute push_next -> store pop_prev   (compute->store: the results are in)
;   store push_prev -> compute pop_next   (store->compute: the accumulator half may be overwritten)
; DRAM: default image. Stage i uses half i % 2 and writes its tile at OUT + i * 4*DIM*DIM.
  load.sp sram=0 dram=IN stride=DIM rows=(2*DIM) cols=DIM push_next
  load.sp sram=SP_HALF dram=(IN+2*DIM*DIM) stride=DIM rows=(2*DIM) cols=DIM push_next
  gemm a=0 b=DIM c=0 k=DIM pop_prev push_prev push_next
  store.acc sram=0 dram=OUT stride=(4*DIM) rows=DIM cols=DIM pop_prev push_prev
  gemm a=SP_HALF b=(SP_HALF+DIM) c=ACC_HALF k=DIM pop_prev push_prev push_next
  store.acc sram=ACC_HALF dram=(OUT+4*DIM*DIM) stride=(4*DIM) rows=DIM cols=DIM pop_prev push_prev
  load.sp sram=0 dram=(IN+4*DIM*DIM) stride=DIM rows=(2*DIM) cols=DIM pop_next push_next
  gemm a=0 b=DIM c=0 k=DIM pop_prev pop_next push_prev push_next
  store.acc sram=0 dram=(OUT+8*DIM*DIM) stride=(4*DIM) rows=DIM cols=DIM pop_prev push_prev
  load.sp sram=SP_HALF dram=(IN+6*DIM*DIM) stride=DIM rows=(2*DIM) cols=DIM pop_next push_next
  gemm a=SP_HALF b=(SP_HALF+DIM) c=ACC_HALF k=DIM pop_prev pop_next push_next
  store.acc sram=ACC_HALF dram=(OUT+12*DIM*DIM) stride=(4*DIM) rows=DIM cols=DIM pop_prev
  finish
