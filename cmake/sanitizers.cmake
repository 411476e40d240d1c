# ASan + UBSan for the asan and fuzz presets: every target links them.
if(LOCKSTEP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# The fuzz preset instruments every library for coverage, not only the targets.
if(LOCKSTEP_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# Adds a libFuzzer target (clang) or, without LOCKSTEP_FUZZ, a replay executable that
# runs the target over its seed corpus under ctest, so the targets never rot.
function(lockstep_fuzz_target name)
  set(corpus ${PROJECT_SOURCE_DIR}/corpus/${name})
  if(LOCKSTEP_FUZZ)
    add_executable(fuzz_${name} ${name}.cpp)
    # LOCKSTEP_FUZZ_ENGINE: the engine's link flags from ClusterFuzzLite/OSS-Fuzz
    # ($LIB_FUZZING_ENGINE); libFuzzer by default.
    if(LOCKSTEP_FUZZ_ENGINE)
      target_link_options(fuzz_${name} PRIVATE ${LOCKSTEP_FUZZ_ENGINE})
    else()
      target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
      target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    endif()
  else()
    add_executable(fuzz_${name} ${name}.cpp replay_main.cpp)
  endif()
  # Extra arguments: further libraries the target needs (lockstep_faults for the faults).
  target_link_libraries(fuzz_${name} PRIVATE lockstep_engine ${ARGN} lockstep_warnings)
  if(LOCKSTEP_TESTS AND NOT LOCKSTEP_FUZZ)
    add_test(NAME fuzz_replay_${name} COMMAND fuzz_${name} ${corpus})
  endif()
endfunction()
