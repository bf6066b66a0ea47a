/*
** Unit tests for beam: beam and greedy search over toy decoders.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/alloc.h"
#include "nlp/beam.h"

static void test_config_rejects(void **state)
{
    (void)state;
    nlp_beam_config c;
    nlp_beam_config_default(&c);
    nlp_beam *b = (nlp_beam *)1;
    assert_int_equal(nlp_beam_new(&b, &c, 1, 1, 1), NLP_EINVAL);
    assert_null(b);
    c.V = 5; c.bos = 0; c.eos = 1;
    assert_int_equal(nlp_beam_config_check(&c, NULL), NLP_OK);
    c.n_best = 6;
    nlp_error e;
    assert_int_equal(nlp_beam_config_check(&c, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "n-best 6"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
