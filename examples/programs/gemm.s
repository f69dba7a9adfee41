; GEMM forms: k < ROWS, k = ROWS, k > ROWS, accumulate, repeat with strides, back-to-back GEMMs that
; overlap in the matrix pipeline. Output-stationary: scratchpad row a + t holds column t of A.
; DRAM: default image. Scratchpad rows 0..(4*DIM) hold random int8.
  load.sp sram=0 dram=IN stride=DIM rows=(4*DIM) cols=DIM push_next
  gemm a=0 b=DIM c=0 k=1 pop_prev                                  ; k = 1
  gemm a=0 b=DIM c=DIM k=ROWS                                      ; k = ROWS
  gemm a=DIM b=(2*DIM) c=(2*DIM) k=(2*DIM+1)                        ; k > ROWS
  gemm a=0 b=DIM c=(2*DIM) k=(ROWS-1) accumulate                   ; accumulate onto the previous
  gemm a=0 b=(2*DIM) c=(3*DIM) k=2 repeat=3 sa=2 sb=3 sc=ROWS      ; repeat, disjoint outputs
  gemm a=0 b=DIM c=(7*DIM) k=3 repeat=2 sa=3 sb=1 accumulate push_next ; repeat into the same rows
  store.acc sram=0 dram=OUT stride=(4*DIM) rows=(8*DIM) cols=DIM pop_prev
  finish
