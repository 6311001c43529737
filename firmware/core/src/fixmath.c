/* Fixed-point exp and softmax of the training step (docs/fixed-point-training.md, "exp" and
 * "softmax"), bit-exact with exp_q30 / softmax_q16 in host/qora/reference/train.py.
 *
 * Scaling and overflow: the exponent u = -x * log2 e is formed in Q8.24 from a 20-bit
 * magnitude times a 31-bit constant (< 2^51); the table interpolation multiplies a
 * difference below 2^22 by a 16-bit fraction (< 2^38); the softmax sum is at most
 * n * 2^30. All of these are unsigned 64-bit values, so no rounding ever sees a sign. */
#include "fixmath.h"

#define LOG2E_Q30 1549082005u        /* round(2^30 / ln 2) */
#define EXP_MIN_Q16 (-16 * 65536)    /* exp(-16) * 2^16 = 0.0074: rounds to 0 anyway */

/* EXP2_TABLE[i] = round(2^30 * 2^(-i/256)), i = 0..256; EXP2_TABLE in train.py. */
static const uint32_t EXP2_TABLE[257] = {
    1073741824u, 1070838486u, 1067942999u, 1065055341u, 1062175491u, 1059303428u,
    1056439131u, 1053582579u, 1050733751u, 1047892626u, 1045059183u, 1042233401u,
    1039415261u, 1036604740u, 1033801819u, 1031006477u, 1028218693u, 1025438448u,
    1022665720u, 1019900489u, 1017142735u, 1014392438u, 1011649578u, 1008914134u,
    1006186087u, 1003465416u, 1000752102u, 998046124u, 995347464u, 992656100u,
    989972014u, 987295185u, 984625594u, 981963222u, 979308048u, 976660054u,
    974019220u, 971385527u, 968758955u, 966139485u, 963527098u, 960921775u,
    958323496u, 955732243u, 953147997u, 950570738u, 948000448u, 945437108u,
    942880699u, 940331203u, 937788600u, 935252872u, 932724001u, 930201967u,
    927686753u, 925178340u, 922676710u, 920181844u, 917693724u, 915212331u,
    912737649u, 910269657u, 907808339u, 905353676u, 902905651u, 900464244u,
    898029440u, 895601218u, 893179563u, 890764456u, 888355878u, 885953814u,
    883558244u, 881169153u, 878786521u, 876410331u, 874040567u, 871677210u,
    869320244u, 866969651u, 864625413u, 862287515u, 859955938u, 857630665u,
    855311680u, 852998965u, 850692504u, 848392279u, 846098274u, 843810471u,
    841528855u, 839253408u, 836984114u, 834720956u, 832463917u, 830212982u,
    827968132u, 825729353u, 823496627u, 821269938u, 819049271u, 816834607u,
    814625932u, 812423229u, 810226483u, 808035676u, 805850792u, 803671817u,
    801498734u, 799331526u, 797170178u, 795014675u, 792865000u, 790721137u,
    788583072u, 786450787u, 784324269u, 782203500u, 780088465u, 777979150u,
    775875538u, 773777614u, 771685363u, 769598769u, 767517817u, 765442492u,
    763372778u, 761308661u, 759250125u, 757197155u, 755149737u, 753107854u,
    751071493u, 749040637u, 747015274u, 744995386u, 742980960u, 740971982u,
    738968435u, 736970306u, 734977579u, 732990241u, 731008277u, 729031671u,
    727060411u, 725094480u, 723133865u, 721178552u, 719228525u, 717283772u,
    715344277u, 713410026u, 711481005u, 709557200u, 707638598u, 705725183u,
    703816941u, 701913860u, 700015924u, 698123120u, 696235434u, 694352853u,
    692475362u, 690602947u, 688735596u, 686873293u, 685016026u, 683163781u,
    681316545u, 679474303u, 677637043u, 675804750u, 673977412u, 672155015u,
    670337545u, 668524990u, 666717336u, 664914570u, 663116678u, 661323648u,
    659535466u, 657752119u, 655973594u, 654199878u, 652430958u, 650666822u,
    648907455u, 647152846u, 645402981u, 643657847u, 641917433u, 640181724u,
    638450708u, 636724373u, 635002706u, 633285695u, 631573326u, 629865587u,
    628162466u, 626463950u, 624770026u, 623080683u, 621395908u, 619715688u,
    618040012u, 616368866u, 614702239u, 613040119u, 611382493u, 609729349u,
    608080675u, 606436459u, 604796689u, 603161352u, 601530438u, 599903933u,
    598281827u, 596664106u, 595050760u, 593441776u, 591837143u, 590236848u,
    588640881u, 587049229u, 585461881u, 583878825u, 582300049u, 580725543u,
    579155293u, 577589290u, 576027521u, 574469975u, 572916640u, 571367506u,
    569822560u, 568281792u, 566745190u, 565212742u, 563684439u, 562160268u,
    560640218u, 559124278u, 557612438u, 556104685u, 554601009u, 553101399u,
    551605844u, 550114332u, 548626854u, 547143398u, 545663953u, 544188508u,
    542717053u, 541249576u, 539786068u, 538326517u, 536870912u,
};

/* v / 2^s rounded half up, for s <= 31 and v + 2^(s-1) < 2^32 (rsr in the doc). */
static uint32_t rsr32(uint32_t v, uint32_t s)
{
    return s != 0u ? (v + (1u << (s - 1u))) >> s : v;
}

uint32_t qn_exp_q30(int64_t x)
{
    uint32_t u;
    uint32_t n;
    uint32_t f;
    uint32_t i;
    uint32_t r;
    uint32_t a;
    uint32_t v;
    if (x >= 0) {
        return 1u << 30;
    }
    if (x < EXP_MIN_Q16) {
        return 0u;
    }
    /* [R2] u = rsr((-x) * LOG2E_Q30, 22): -x <= 2^20, the product < 2^51, u <= 387270501 */
    u = (uint32_t)(((uint64_t)(uint32_t)(-x) * LOG2E_Q30 + (1u << 21)) >> 22);
    n = u >> 24;              /* 0..23: the integer part of the exponent */
    f = u & 0xFFFFFFu;
    i = f >> 16;              /* table index 0..255 */
    r = f & 0xFFFFu;          /* position between T[i] and T[i+1] */
    a = EXP2_TABLE[i];
    /* [R3] v = T[i] - rsr((T[i] - T[i+1]) * r, 16); the product < 2^38, 2^29 < v <= 2^30 */
    v = a - (uint32_t)(((uint64_t)(a - EXP2_TABLE[i + 1u]) * r + 32768u) >> 16);
    /* [R4] v + 2^(n-1) <= 2^30 + 2^22: no 32-bit overflow */
    return rsr32(v, n);
}

/* round(e * 2^16 / s) half up, for e <= s, s > 0 [R5]. The quotient is <= 2^16: one step for
 * the integer bit, then 16 binary long-division steps; rem < s throughout, so rem << 1 < 2s
 * (< 2^47 for any n < 2^16 classes). Equal to qora_div_round_i64(e << 16, s). */
static int32_t ratio_q16(uint32_t e, uint64_t s)
{
    uint64_t rem = e;
    uint32_t q = 0;
    int k;
    if (rem >= s) {
        rem -= s;
        q = 1u;
    }
    for (k = 0; k < 16; k++) {
        rem <<= 1;
        q <<= 1;
        if (rem >= s) {
            rem -= s;
            q |= 1u;
        }
    }
    /* e * 2^16 = q * s + rem, 0 <= rem < s: round up when 2 rem >= s */
    if (rem >= s - rem) {
        q++;
    }
    return (int32_t)q;
}

void qn_softmax_q16(int32_t *z, uint32_t n)
{
    int32_t m;
    uint64_t s = 0;
    uint32_t j;
    if (z == 0 || n == 0u) {
        return;
    }
    m = z[0];
    for (j = 1; j < n; j++) {
        if (z[j] > m) {
            m = z[j];
        }
    }
    /* z_j - m is formed in int64 (it can be -(2^32 - 1)); e_j <= 2^30 fits the int32 slot,
     * and the max term is exactly 2^30, so s >= 2^30 > 0 */
    for (j = 0; j < n; j++) {
        uint32_t e = qn_exp_q30((int64_t)z[j] - m);
        z[j] = (int32_t)e;
        s += e;
    }
    for (j = 0; j < n; j++) {
        z[j] = ratio_q16((uint32_t)z[j], s);
    }
}
