/*
** Unit tests for param: layout phase, one allocation, aligned views,
** lookup by name, zeroing, and every refusal.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "nlp/error.h"
#include "nlp/params.h"

static void test_layout(void **state)
{
    (void)state;
    nlp_params *p;
    assert_int_equal(nlp_params_new(&p), NLP_OK);
    int s1[2] = {3, 5}, s2[1] = {7}, s3[3] = {2, 2, 2};
    assert_int_equal(nlp_params_add(p, "a.weight", 2, s1), 0);
    assert_int_equal(nlp_params_add(p, "a.bias", 1, s2), 1);
    assert_int_equal(nlp_params_add(p, "b", 3, s3), 2);
    /* Offsets are aligned and in order, sizes are products. */
    assert_int_equal(p->views[0].offset, 0);
    assert_int_equal(p->views[0].size, 15);
    assert_int_equal(p->views[1].offset, 16);
    assert_int_equal(p->views[2].offset, 32);
    assert_int_equal(p->views[2].size, 8);
    assert_int_equal(p->views[1].shape[1], 1);
    assert_int_equal(nlp_params_count(p), 30);
    /* Refusals in the layout phase. */
    assert_int_equal(nlp_params_add(p, "a.bias", 1, s2), NLP_EINVAL);
    assert_int_equal(nlp_params_add(p, "", 1, s2), NLP_EINVAL);
    int bad[2] = {3, 0};
    assert_int_equal(nlp_params_add(p, "c", 2, bad), NLP_EINVAL);
    assert_int_equal(nlp_params_add(p, "c", 0, s1), NLP_EINVAL);
    assert_int_equal(nlp_params_add(p, "c", 5, s1), NLP_EINVAL);
    char longname[NLP_PARAM_NAME_MAX + 1];
    memset(longname, 'x', sizeof longname - 1);
    longname[NLP_PARAM_NAME_MAX] = 0;
    assert_int_equal(nlp_params_add(p, longname, 1, s2), NLP_ERANGE);
    longname[NLP_PARAM_NAME_MAX - 1] = 0; /* exactly fits */
    assert_int_equal(nlp_params_add(p, longname, 1, s2), 3);
    assert_null(nlp_params_data(p, 0));
    assert_int_equal(p->nviews, 4);
    nlp_params_free(p);
    nlp_params_free(NULL);
}

static void test_alloc_and_views(void **state)
{
    (void)state;
    nlp_params *p;
    assert_int_equal(nlp_params_new(&p), NLP_OK);
    assert_int_equal(nlp_params_alloc(p), NLP_EINVAL); /* empty */
    int s1[2] = {4, 3}, s2[1] = {5};
    for (int i = 0; i < 40; i++) { /* grows the view table */
        char name[32];
        snprintf(name, sizeof name, "layer%d.w", i);
        assert_int_equal(nlp_params_add(p, name, i % 2 ? 1 : 2, i % 2 ? s2 : s1), i);
    }
    assert_int_equal(nlp_params_alloc(p), NLP_OK);
    assert_int_equal(nlp_params_alloc(p), NLP_EINVAL);
    assert_int_equal(nlp_params_add(p, "late", 1, s2), NLP_EINVAL);
    assert_int_equal(p->n % NLP_PARAM_ALIGN, 0);
    assert_int_equal((uintptr_t)p->data % 64, 0);
    assert_int_equal((uintptr_t)p->grad % 64, 0);
    for (size_t i = 0; i < p->n; i++)
        assert_true(p->data[i] == 0.0f && p->grad[i] == 0.0f);
    /* Views: find by name, data/grad pointers. */
    const nlp_params_view *v = nlp_params_find(p, "layer7.w");
    assert_non_null(v);
    assert_int_equal(v->size, 5);
    assert_int_equal(nlp_params_index(p, "layer7.w"), 7);
    assert_null(nlp_params_find(p, "nope"));
    assert_int_equal(nlp_params_index(p, "nope"), -1);
    assert_ptr_equal(nlp_params_data(p, 7), p->data + v->offset);
    assert_ptr_equal(nlp_params_grad(p, 7), p->grad + v->offset);
    assert_null(nlp_params_data(p, 40));
    assert_null(nlp_params_grad(p, -1));
    /* Views do not overlap. */
    for (int i = 1; i < p->nviews; i++)
        assert_true(p->views[i].offset >= p->views[i - 1].offset + p->views[i - 1].size);
    for (size_t i = 0; i < p->n; i++)
        p->grad[i] = 1.0f;
    nlp_params_zero_grad(p);
    for (size_t i = 0; i < p->n; i++)
        assert_true(p->grad[i] == 0.0f);
    nlp_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_alloc_and_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
