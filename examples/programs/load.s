; Every LOAD form; the results are stored back to OUT so the final DRAM shows them.
; DRAM: default image (random bytes at IN). Scratchpad rows 0..; accumulator rows 0..
  load.sp  sram=0 dram=IN stride=DIM rows=DIM cols=DIM                  ; full rows, contiguous
  load.sp  sram=DIM dram=(IN+100) stride=(3*DIM) rows=3 cols=(DIM-1) pad=2  ; partial rows, stride, pad
  load.sp  sram=(DIM+5) rows=0 pad=3                                    ; pad-only (no DRAM port)
  load.acc sram=0 dram=(IN+512) stride=(4*DIM) rows=DIM cols=DIM        ; int32 rows
  load.acc sram=DIM dram=(IN+1024) stride=(8*DIM) rows=2 cols=1 push_next  ; one int32 per row, rest zero
  vec.add  dst=(2*DIM) src=(2*DIM) rows=1 use_imm imm=0 pop_prev push_next ; relays the token to store
  store.sp  sram=0 dram=OUT stride=DIM rows=(DIM+8) cols=DIM pop_prev
  store.acc sram=0 dram=(OUT+1024) stride=(4*DIM) rows=(DIM+2) cols=DIM
  finish
