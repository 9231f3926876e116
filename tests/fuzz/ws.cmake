# tests/fuzz/ws.cmake -- the WebSocket frame fuzzer (fuzz_ws_frames.c),
# included by tests/CMakeLists.txt. libFuzzer needs clang: the target is
# built with it (whatever compiler builds the rest) from ws_frame.c alone,
# with ASan and UBSan, and runs for a bounded time (CORIO_FUZZ_SECONDS,
# 20 by default) in the ASan+UBSan build's suite: a ctest entry labelled
# "fuzz;novalgrind". New inputs it finds go to the build tree's corpus;
# the seeds in tests/fuzz/corpus/ws are only read.
set(CORIO_FUZZ_SECONDS 20 CACHE STRING "seconds each fuzz test runs")
find_program(CORIO_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
if(CORIO_WITH_WS AND CORIO_CLANG AND CORIO_SANITIZE MATCHES "address")
  set(fuzz_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz_ws_frames)
  set(fuzz_src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_ws_frames.c
    ${PROJECT_SOURCE_DIR}/src/http/ws_frame.c)
  add_custom_command(OUTPUT ${fuzz_out}
    COMMAND ${CORIO_CLANG} -g -O1 -std=gnu11
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
      -I${PROJECT_SOURCE_DIR}/include -I${CORIO_WSLAY_INCLUDE}
      ${fuzz_src} ${CORIO_WSLAY_LIB} -o ${fuzz_out}
    DEPENDS ${fuzz_src} ${PROJECT_SOURCE_DIR}/src/http/ws_int.h
    COMMENT "Building the WebSocket frame fuzzer with ${CORIO_CLANG}")
  add_custom_target(fuzz_ws_frames ALL DEPENDS ${fuzz_out})
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus_ws)
  add_test(NAME fuzz_ws_frames COMMAND ${fuzz_out}
    -max_total_time=${CORIO_FUZZ_SECONDS} -rss_limit_mb=2048 -timeout=10
    ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus_ws
    ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/ws)
  set_tests_properties(fuzz_ws_frames PROPERTIES LABELS "fuzz;novalgrind"
    TIMEOUT 300)
elseif(CORIO_WITH_WS AND CORIO_SANITIZE MATCHES "address")
  message(STATUS "corio: no clang: the WebSocket fuzzer is not built")
endif()
