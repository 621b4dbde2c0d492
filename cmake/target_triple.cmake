# target_triple.cmake — the Rust-style target triple of the compiler's
# target, for `mcpr version` ({"target": ...}, as the original prints).
#
# The compiler names its target (`cc -dumpmachine`): gcc says
# x86_64-linux-gnu, clang x86_64-pc-linux-gnu, Apple clang
# arm64-apple-darwin23.1.0. Rust names the same targets
# x86_64-unknown-linux-gnu and aarch64-apple-darwin; map to those so the
# field reads as the original's. Unknown shapes are kept as the compiler
# says them; no answer at all gives PROCESSOR-unknown-SYSTEM.
function(mcpr_target_triple out)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -dumpmachine
                  OUTPUT_VARIABLE machine OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR machine STREQUAL "")
    string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}-unknown-${CMAKE_SYSTEM_NAME}" machine)
  endif()
  string(REGEX REPLACE "^arm64-" "aarch64-" machine "${machine}")
  string(REGEX REPLACE "^([^-]+)-(pc-|unknown-)?linux-" "\\1-unknown-linux-" machine "${machine}")
  string(REGEX REPLACE "^([^-]+)-apple-darwin.*$" "\\1-apple-darwin" machine "${machine}")
  set(${out} "${machine}" PARENT_SCOPE)
endfunction()
