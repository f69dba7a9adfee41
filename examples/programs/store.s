; Every STORE form: scratchpad, accumulator (int32), narrowed int8 (saturating), partial rows, rows = 0.
; DRAM: default image. The accumulator rows hold random int32 (most saturate when narrowed).
  load.sp  sram=0 dram=IN stride=DIM rows=DIM cols=DIM
  load.acc sram=0 dram=(IN+256) stride=(4*DIM) rows=DIM cols=DIM push_next
  vec.shr  dst=DIM src=0 rows=DIM use_imm imm=24 pop_prev push_next  ; small values: narrow keeps them
  store.sp  sram=0 dram=OUT stride=(2*DIM) rows=DIM cols=DIM pop_prev ; strided rows in DRAM
  store.acc sram=0 dram=(OUT+512) stride=(4*DIM) rows=DIM cols=DIM    ; int32
  store.acc sram=0 dram=(OUT+1024) stride=DIM rows=DIM cols=DIM narrow ; saturating int8
  store.acc sram=DIM dram=(OUT+1536) stride=DIM rows=DIM cols=DIM narrow ; in range int8
  store.acc sram=DIM dram=(OUT+2048) stride=(4*DIM) rows=2 cols=(DIM-1) ; partial rows
  store.acc rows=0                                                     ; no data, one cycle
  finish
