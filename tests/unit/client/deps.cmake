# The client tests talk to the real `cairn serve` binary.
if(TARGET cairn_cli)
  target_compile_definitions(${exe} PRIVATE CAIRN_BIN="$<TARGET_FILE:cairn_cli>")
  add_dependencies(${exe} cairn_cli)
endif()
